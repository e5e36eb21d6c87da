"""`trajectories compare`: figures side by side across runs, or pooled over groups of a sweep's runs.

Reads run folders only, never writes to them. Runs are grouped by config keys (`--by`); a group's
figure at a stage pools the valid values of all its runs. Answers within a run are not independent
of each other (one persona, one memory, one trajectory), so where two or more runs contribute, the
interval comes from a cluster bootstrap over runs rather than from treating all answers as one
sample. The bootstrap is seeded per (group, stage, figure): the same folders and seed always give
the same numbers, and adding a group or figure leaves the others' intervals unchanged.
"""

from __future__ import annotations

import difflib
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from simulator.errors import SimulatorError
from simulator.measure.summary import Observation, figure, figure_cell, kind_of, observations
from simulator.read.runs import ExcludedRun, find_runs, open_run
from simulator.read.tables import config_columns
from simulator.stats.figures import Figure, percentile_interval

SINGLE_RUN_METHOD = {"mean": "t", "rate": "jeffreys"}  # what a run's own summary uses
COMMON_KEYS = ("persona", "schedule.name", "model.model_name", "model.model", "seed", "probes.samples")


class Member(BaseModel):
    folder: str
    status: str = Field(description="completed, failed, or running (no run_finished event yet).")
    observations: int = Field(description="Its measurements, valid or not; a run with none contributes nothing.")


class PooledFigure(Figure):
    """One figure of one group at one stage: a Figure over the pooled valid values of the group's runs."""

    runs: int = Field(description="Runs with at least one valid value here (the bootstrap's clusters).")
    method: str = Field(description="How the interval was computed: t, jeffreys, or cluster bootstrap over runs.")


class Group(BaseModel):
    label: str = Field(description="'key=value, ...' of its --by keys, or the run folder without --by.")
    keys: dict[str, Any] = Field(description="Its value of each resolved --by key.")
    runs: list[Member]
    figures: dict[str, dict[int, PooledFigure]] = Field(description="figure name -> stage -> pooled figure.")


class RunsComparison(BaseModel):
    paths: list[str]
    by: list[str] = Field(description="The --by keys as resolved (schedule -> schedule.name).")
    resolved: dict[str, str] = Field(description="--by keys that named a part of the config, and the key used.")
    reps: int
    seed: int
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


def _bootstrap(values: list[np.ndarray], reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the pooled mean: runs drawn with replacement, then each drawn run's
    valid values with replacement (afresh each time it is drawn)."""
    drawn = rng.integers(len(values), size=(reps, len(values)))
    total, count = np.zeros(reps), np.zeros(reps)
    for i, v in enumerate(values):
        rows = np.nonzero(drawn == i)[0]  # a rep appears once per time it drew run i
        if rows.size:
            sums = v[rng.integers(len(v), size=(rows.size, len(v)))].sum(axis=1)
            total += np.bincount(rows, weights=sums, minlength=reps)
            count += np.bincount(rows, minlength=reps) * len(v)
    return percentile_interval(total / count)


def _pooled(name: str, per_run: list[list[Observation]], where: str, reps: int, seed: int) -> PooledFigure:
    """One run with values: its own summary's figure; more: the pooled mean, cluster-bootstrapped."""
    values = [np.array([float(v) for _, v in obs if v is not None]) for obs in per_run]
    values = [v for v in values if v.size]
    single = figure(name, [o for obs in per_run for o in obs])
    # Values that are all equal would bootstrap to a zero-width interval, a certainty no run gave:
    # they get the one-sample interval of the pooled values (Jeffreys for rates; none for scores).
    if len(values) < 2 or np.ptp(np.concatenate(values)) == 0:
        return PooledFigure(**single.model_dump(), runs=len(values), method=SINGLE_RUN_METHOD[kind_of(name)])
    low, high = _bootstrap(values, reps, np.random.default_rng([seed, zlib.crc32(where.encode())]))
    return PooledFigure(**single.model_dump(exclude={"value", "ci_low", "ci_high"}),
                        value=float(np.concatenate(values).mean()), ci_low=low, ci_high=high,
                        runs=len(values), method=f"cluster bootstrap over runs ({reps} reps)")


def _group_figures(label: str, runs: list[_Run], reps: int, seed: int) -> dict[str, dict[int, PooledFigure]]:
    found: dict[str, dict[int, list[list[Observation]]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        for stage, figures in r.found.items():
            for name, obs in figures.items():
                found[name][stage].append(obs)
    return {name: {stage: _pooled(name, per_run, f"{label}|{stage}|{name}", reps, seed)
                   for stage, per_run in sorted(by_stage.items())}
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


def compare(paths: list[Path], by: list[str], reps: int = 1000, seed: int = 0) -> RunsComparison:
    """Every figure of every group at every stage, pooled over the group's runs; reads, writes nothing."""
    if reps < 1:
        raise SimulatorError("--reps", "", f"{reps}: a bootstrap needs at least one resample",
                             "give --reps 1000 (the default)")
    loaded = [_load(folder) for folder in _folders(paths)]
    runs = [r for r in loaded if isinstance(r, _Run)]
    known = {key for r in runs for key in r.columns}
    keys = [_resolve(key, known) for key in by] if runs else list(by)  # no readable run: nothing to check against
    groups = [Group(label=label, keys=values, runs=[_member(r) for r in members],
                    figures=_group_figures(label, members, reps, seed))
              for label, values, members in _groups(runs, keys)]
    return RunsComparison(paths=[str(p) for p in paths], by=keys, resolved={k: r for k, r in zip(by, keys) if k != r},
                      reps=reps, seed=seed, groups=groups,
                      excluded=[r for r in loaded if isinstance(r, ExcludedRun)])


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
             f"more runs: cluster bootstrap over runs ({c.reps} reps, seed {c.seed}; runs resampled with "
             "replacement, then each drawn run's valid values), 95% percentile; with few runs it is rough and "
             "tends to be too narrow; where all the valid values are equal: Jeffreys on the pooled values "
             "(scores: none), as if independent",
             "figures computed over a whole instrument (kappa, value-profile figures) are not pooled here"]
    lines += [f"--by {key}: resolved to {key_used}" for key, key_used in c.resolved.items()]
    lines += ["", "groups:"]
    for g in c.groups:
        members = [f"{m.folder} ({m.status}" + (")" if m.observations else ", no observations)") for m in g.runs]
        lines += [f"  {g.label}:", *(f"    {m}" for m in members)] if c.by else [f"  {m}" for m in members]
    if c.excluded:
        lines += ["", "excluded:", *(f"  {r.folder} ({r.reason})" for r in c.excluded)]
    return lines
