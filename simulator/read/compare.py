"""`trajectories compare`: figures side by side across runs, or pooled over groups of a sweep's runs.

Reads run folders only, never writes to them. Runs are grouped by config keys (`--by`); a group's
figure at a stage pools the valid values of all its runs. Answers within a run are not independent
of each other (one persona, one memory, one trajectory), so where two or more runs contribute, the
runs are the independent units: the pooled mean (all valid values / their count, a ratio estimator)
gets a cluster-robust (sandwich) variance over runs, times R / (R - 1) for few runs, and a t interval
on R - 1 df, clipped to the figure's scale (`simulator.stats.contrasts.cluster_mean`). Nothing is
resampled, so the same folders always give the same numbers, whatever the other groups.

Every run asks the same items, so an interval over runs is about those items: it does not cover
the variation between items that a single run's interval (clustered on items) allows for. Read a
pooled figure as "on these items"; for the population of items, widen it by a run's own interval
or ask more items. (Two-way clustering over runs and items would cover both; not done.)
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from simulator.errors import SimulatorError
from simulator.measure.summary import BOUNDS, Observation, figure, figure_cell, kind_of, observations
from simulator.read.runs import ExcludedRun, find_runs, open_run
from simulator.read.tables import config_columns
from simulator.stats.contrasts import cluster_mean
from simulator.stats.figures import Figure

SINGLE_RUN_METHOD = {"mean": "t", "probability": "t", "rate": "jeffreys"}  # what a run's own summary uses
CLUSTER_METHOD = "cluster-robust t over runs"
COMMON_KEYS = ("persona", "schedule.name", "model.model_name", "model.model", "seed", "probes.samples",
               "probes.scoring")


class Member(BaseModel):
    folder: str
    status: str = Field(description="completed, failed, or running (no run_finished event yet).")
    observations: int = Field(description="Its measurements, valid or not; a run with none contributes nothing.")


class PooledFigure(Figure):
    """One figure of one group at one stage: a Figure over the pooled valid values of the group's runs."""

    runs: int = Field(description="Runs with at least one valid value here (the interval's clusters).")
    method: str = Field(description="How the interval was computed: t or jeffreys (one run, or runs that all have "
                        "the same mean), or cluster-robust t over runs (R - 1 df).")


class Group(BaseModel):
    label: str = Field(description="'key=value, ...' of its --by keys, or the run folder without --by.")
    keys: dict[str, Any] = Field(description="Its value of each resolved --by key.")
    runs: list[Member]
    figures: dict[str, dict[int, PooledFigure]] = Field(description="figure name -> stage -> pooled figure.")


class RunsComparison(BaseModel):
    paths: list[str]
    by: list[str] = Field(description="The --by keys as resolved (schedule -> schedule.name).")
    resolved: dict[str, str] = Field(description="--by keys that named a part of the config, and the key used.")
    groups: list[Group]
    excluded: list[ExcludedRun] = Field(description="Run folders that could not be read, with why: never silently.")


@dataclass
class _Run:
    folder: str
    status: str
    columns: dict[str, Any]  # the config flattened to dotted keys, and persona (the card's name)
    found: dict[int, dict[str, list[Observation]]]  # stage -> figure -> observations


def _load(run_dir: Path) -> _Run | ExcludedRun:
    opened = open_run(run_dir)
    if isinstance(opened, ExcludedRun):
        return opened
    return _Run(folder=opened.folder, status=opened.status,
                columns=config_columns(opened.start.config) | {"persona": opened.start.persona},
                found=observations(opened.events))


def _resolve(key: str, known: set[str]) -> str:
    """A config key as given, or `key.name` where key names a part of the config (schedule)."""
    if key in known:
        return key
    if f"{key}.name" in known:
        return f"{key}.name"
    suggestions = difflib.get_close_matches(key, sorted(known), n=4, cutoff=0.5)
    suggestions += [k for k in COMMON_KEYS if k in known and k not in suggestions]
    raise SimulatorError("--by KEY", "", f"{key!r} is not a key of these runs' configs",
                         "give one of the run config's keys (dotted), e.g. " + ", ".join(suggestions[:8]))


def _order(value: Any) -> tuple:
    """Numbers in numeric order (seed 2 before seed 10), then everything else as text."""
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def _groups(runs: list[_Run], by: list[str]) -> list[tuple[str, dict[str, Any], list[_Run]]]:
    if not by:
        return [(r.folder, {}, [r]) for r in runs]
    members: dict[tuple, list[_Run]] = defaultdict(list)
    for r in runs:
        members[tuple(r.columns.get(key) for key in by)].append(r)
    return [(", ".join(f"{k}={v}" for k, v in zip(by, values)), dict(zip(by, values)), members[values])
            for values in sorted(members, key=lambda vs: tuple(map(_order, vs)))]


def _pooled(name: str, per_run: list[list[Observation]]) -> PooledFigure:
    """One run with values: its own summary's figure; more: the pooled mean with a cluster-robust
    t interval over runs."""
    values = [np.array([float(v) for _, v in obs if v is not None]) for obs in per_run]
    values = [v for v in values if v.size]
    # Clusters are a run's own: the same episode id in two runs is two independent episodes.
    single = figure(name, [(f"{i}/{cluster}", v) for i, obs in enumerate(per_run) for cluster, v in obs])
    kind = kind_of(name, (v for obs in per_run for _, v in obs))
    pooled = cluster_mean(values, BOUNDS[kind]) if len(values) >= 2 else None
    # Runs with one mean (values all equal, say) leave no spread between runs to scale a t by, and a
    # zero-width interval would be a certainty no run gave: they get the one-run interval of the
    # pooled values, as if independent.
    if pooled is None or pooled.ci_low is None or pooled.ci_high is None or pooled.df is None:
        return PooledFigure(**single.model_dump(), runs=len(values), method=SINGLE_RUN_METHOD[kind])
    return PooledFigure(**single.model_dump(exclude={"value", "ci_low", "ci_high"}), value=pooled.estimate,
                        ci_low=pooled.ci_low, ci_high=pooled.ci_high, runs=len(values),
                        method=f"{CLUSTER_METHOD} ({pooled.df:.0f} df)")


def _group_figures(runs: list[_Run]) -> dict[str, dict[int, PooledFigure]]:
    found: dict[str, dict[int, list[list[Observation]]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        for stage, figures in r.found.items():
            for name, obs in figures.items():
                found[name][stage].append(obs)
    return {name: {stage: _pooled(name, per_run) for stage, per_run in sorted(by_stage.items())}
            for name, by_stage in sorted(found.items())}


def _member(r: _Run) -> Member:
    return Member(folder=r.folder, status=r.status,
                  observations=sum(len(obs) for figures in r.found.values() for obs in figures.values()))


def _folders(paths: list[Path]) -> list[Path]:
    folders = []
    for path in paths:
        found = find_runs(path)
        if not found:
            raise SimulatorError(str(path), "", "no run folders (events.jsonl) in or under it",
                                 "give run folders, or a folder of runs (a sweep's hydra.sweep.dir)")
        folders += [f for f in found if f not in folders]
    return folders


def compare(paths: list[Path], by: list[str]) -> RunsComparison:
    """Every figure of every group at every stage, pooled over the group's runs; reads, writes nothing."""
    loaded = [_load(folder) for folder in _folders(paths)]
    runs = [r for r in loaded if isinstance(r, _Run)]
    known = {key for r in runs for key in r.columns}
    keys = [_resolve(key, known) for key in by] if runs else list(by)  # no readable run: nothing to check against
    groups = [Group(label=label, keys=values, runs=[_member(r) for r in members],
                    figures=_group_figures(members))
              for label, values, members in _groups(runs, keys)]
    return RunsComparison(paths=[str(p) for p in paths], by=keys, resolved={k: r for k, r in zip(by, keys) if k != r},
                          groups=groups, excluded=[r for r in loaded if isinstance(r, ExcludedRun)])


def format_comparison(c: RunsComparison) -> tuple[list[str], list[list[str]], list[str]]:
    """A table with one row per (figure, stage) and one column per group, and its footnotes."""
    header = ["figure", "stage", *(g.label for g in c.groups)]
    rows = sorted({(name, stage) for g in c.groups for name, stages in g.figures.items() for stage in stages})
    table = [[name, str(stage), *(_cell(g.figures.get(name, {}).get(stage)) for g in c.groups)]
             for name, stage in rows]
    return header, table, _footnotes(c)


def _cell(fig: PooledFigure | None) -> str:
    return "-" if fig is None else f"{figure_cell(fig)} runs={fig.runs}"


def _footnotes(c: RunsComparison) -> list[str]:
    lines = ["cells: value [95% interval] n=valid values (+invalid) runs=runs with valid values; the value is "
             "the mean of all the group's valid values (a rate, or a mean judge score), so runs with more "
             "answers weigh more",
             "intervals: one run: Student-t (scores) or Jeffreys (rates), as in the run's own summary; two or "
             "more runs: cluster-robust t over runs (the runs are the independent units: sandwich variance of "
             "the pooled mean over runs, times R/(R-1), t on R-1 df, clipped to the scale), wide with few "
             "runs, as it should be; where every run has the same mean (all values equal, say): the one-run "
             "interval of the pooled values, as if independent",
             "figures computed over a whole instrument (kappa, value-profile figures) are not pooled here"]
    lines += [f"--by {key}: resolved to {key_used}" for key, key_used in c.resolved.items()]
    lines += ["", "groups:"]
    for g in c.groups:
        members = [f"{m.folder} ({m.status}" + (")" if m.observations else ", no observations)") for m in g.runs]
        lines += [f"  {g.label}:", *(f"    {m}" for m in members)] if c.by else [f"  {m}" for m in members]
    if c.excluded:
        lines += ["", "excluded:", *(f"  {r.folder} ({r.reason})" for r in c.excluded)]
    return lines
