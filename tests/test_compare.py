"""`trajectories compare`: figures side by side across runs, pooled over groups of a sweep's runs,
with the run's own intervals for one run and a cluster-robust t interval over runs for several."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simulator.errors import SimulatorError
from simulator.measure.summary import summarise
from simulator.read.compare import compare, format_comparison
from simulator.trajectory import read_events
from simulator.world.machine import SCRIPT
from tests.conftest import NO_VALUES, SMALL, run_scripted
from tests.controls import episode_policy
from tests.scripted_model import ScriptedChatModel, _digest
from tests.test_analysis import accepting, write_run

FIGURE = "shutdown_mc.accepting"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two seeds of each of two schedules, as a Hydra sweep lays them out (one folder per job)."""
    root = tmp_path_factory.mktemp("sweep")
    episode = episode_policy(f"rm {SCRIPT}")  # resists in every shutdown episode; other answers by a hash

    def choose(prompt: str, values: list[str]) -> str:
        if "Session so far:" in prompt:
            return episode["choose"](prompt, values)
        return values[_digest(prompt) % len(values)]

    for job, (schedule, seed) in enumerate([("reflection", 1), ("reflection", 2), ("control", 1), ("control", 2)]):
        run_scripted(root / str(job), *SMALL, *NO_VALUES, f"schedule={schedule}", f"seed={seed}",
                     model=ScriptedChatModel(choose=choose))
    return root


def summary_figure(run: Path, stage: int, name: str):
    return next(s for s in summarise(read_events(run)).stages if s.stage == stage).figures[name]


def group(comparison, label: str):
    return next(g for g in comparison.groups if g.label == label)


def test_grouping_by_schedule_pools_the_runs_of_each_schedule(sweep):
    c = compare([sweep], ["schedule.name"])
    assert [g.label for g in c.groups] == ["schedule.name=control", "schedule.name=reflection"]
    reflection = group(c, "schedule.name=reflection")
    assert [Path(m.folder).name for m in reflection.runs] == ["0", "1"]
    own = [summary_figure(sweep / job, 0, FIGURE) for job in ("0", "1")]
    pooled = reflection.figures[FIGURE][0]
    assert pooled.n == sum(f.n for f in own) and pooled.invalid == sum(f.invalid for f in own) and pooled.runs == 2
    assert pooled.value == pytest.approx(sum(f.value * f.n for f in own) / pooled.n)


def test_one_runs_cell_is_its_own_summary_figure(sweep):
    run = sweep / "0"
    (only,) = compare([run], []).groups
    assert only.label == str(run)
    for name, stages in only.figures.items():
        for stage, pooled in stages.items():
            own = summary_figure(run, stage, name)
            assert (pooled.value, pooled.n, pooled.invalid, pooled.ci_low, pooled.ci_high) == (
                own.value, own.n, own.invalid, own.ci_low, own.ci_high)
            assert pooled.runs == (1 if own.n else 0)  # a run with no valid measurement adds none
            assert pooled.method == ("t" if name.endswith(".score") else "jeffreys")


def test_the_interval_over_runs_holds_the_pooled_value(sweep):
    c = compare([sweep], ["schedule.name"])
    clustered = [f for g in c.groups for stages in g.figures.values() for f in stages.values()
                 if f.method == "cluster-robust t over runs (1 df)"]
    assert len(clustered) >= 3 and all(f.runs == 2 and f.ci_low <= f.value <= f.ci_high for f in clustered)
    assert any(f.ci_low < f.ci_high for f in clustered)


def accepting_runs(root: Path, counts: list[tuple[int, int]]) -> Path:
    """One run per (accepting answers, answers) at stage 0, as runs of one schedule."""
    for seed, (k, n) in enumerate(counts):
        write_run(root / str(seed), "frontier_assistant", "control", seed, [accepting(k / n, n)])
    return root


def test_a_pooled_interval_is_the_cluster_robust_t_interval_of_the_ratio_mean(tmp_path):
    counts = [(4, 20), (12, 30), (3, 10)]
    (g,) = compare([accepting_runs(tmp_path, counts)], ["schedule.name"]).groups
    sums, sizes = (np.array(column, dtype=float) for column in zip(*counts))
    mean = sums.sum() / sizes.sum()
    variance = 3 / 2 * ((sums - mean * sizes) ** 2).sum() / sizes.sum() ** 2
    half = stats.t.ppf(0.975, 2) * np.sqrt(variance)
    pooled = g.figures[FIGURE][0]
    assert (pooled.value, pooled.ci_low, pooled.ci_high) == pytest.approx((mean, mean - half, mean + half))
    assert (pooled.n, pooled.runs, pooled.method) == (60, 3, "cluster-robust t over runs (2 df)")


def test_a_pooled_interval_is_clipped_to_the_rates_scale(tmp_path):
    (g,) = compare([accepting_runs(tmp_path, [(1, 20), (18, 20)])], ["schedule.name"]).groups
    pooled = g.figures[FIGURE][0]
    assert (pooled.value, pooled.ci_low, pooled.ci_high) == pytest.approx((19 / 40, 0, 1))


def test_runs_with_the_same_mean_but_varied_answers_get_the_pooled_jeffreys_interval(tmp_path):
    (g,) = compare([accepting_runs(tmp_path, [(5, 20), (5, 20)])], ["schedule.name"]).groups
    pooled = g.figures[FIGURE][0]
    assert (pooled.value, pooled.method) == (0.25, "jeffreys")
    assert pooled.ci_low < 0.25 < pooled.ci_high


def test_runs_that_all_give_one_answer_get_the_pooled_jeffreys_interval_not_a_zero_width_one(sweep):
    resisted = group(compare([sweep], ["schedule.name"]), "schedule.name=reflection").figures[
        "shutdown_behaviour.resisted"][0]
    assert (resisted.value, resisted.runs, resisted.method) == (1.0, 2, "jeffreys")
    assert resisted.ci_low < 0.9 and resisted.ci_high == 1.0


def test_a_groups_intervals_do_not_depend_on_the_other_groups(sweep):
    alone = compare([sweep / "0", sweep / "1"], ["schedule.name"])
    together = compare([sweep], ["schedule.name"])
    assert alone.groups == [group(together, "schedule.name=reflection")]


def test_a_key_naming_part_of_the_config_resolves_to_its_name(sweep):
    c = compare([sweep], ["schedule", "seed"])
    assert c.by == ["schedule.name", "seed"] and c.resolved == {"schedule": "schedule.name"}
    assert [g.label for g in c.groups][:2] == ["schedule.name=control, seed=1", "schedule.name=control, seed=2"]
    assert "--by schedule: resolved to schedule.name" in format_comparison(c)[2]


def test_an_unknown_key_is_an_error_that_names_it_and_valid_keys(sweep):
    with pytest.raises(SimulatorError) as err:
        compare([sweep], ["schedul.nam"])
    assert err.value.source == "--by KEY" and "'schedul.nam'" in err.value.problem
    assert "schedule.name" in err.value.fix and "persona" in err.value.fix


def test_an_unreadable_run_folder_is_listed_as_excluded_not_a_crash(sweep, tmp_path):
    shutil.copytree(sweep / "0", tmp_path / "good")
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "events.jsonl").write_text("not json\n{}\n")
    (tmp_path / "no_start").mkdir()
    (tmp_path / "no_start" / "events.jsonl").write_text("")
    c = compare([tmp_path], [])
    assert [g.label for g in c.groups] == [str(tmp_path / "good")]
    assert {Path(r.folder).name for r in c.excluded} == {"bad_json", "no_start"}
    assert all(r.reason.startswith("unreadable (") for r in c.excluded)
    assert f"  {tmp_path / 'no_start'} (unreadable (StopIteration: ))" in format_comparison(c)[2]


def test_a_running_run_is_pooled_and_listed_with_its_status(sweep, tmp_path):
    shutil.copytree(sweep / "0", tmp_path / "running")
    log = tmp_path / "running" / "events.jsonl"
    log.write_text("".join(line for line in log.read_text().splitlines(keepends=True)
                           if json.loads(line)["type"] != "run_finished"))
    shutil.copytree(sweep / "1", tmp_path / "done")
    (g,) = compare([tmp_path], ["persona"]).groups
    assert [(Path(m.folder).name, m.status) for m in g.runs] == [("done", "completed"), ("running", "running")]
    assert g.figures[FIGURE][0].runs == 2


def test_the_table_has_a_row_per_figure_and_stage_and_a_column_per_group(sweep):
    header, rows, notes = format_comparison(compare([sweep], ["schedule.name"]))
    assert header == ["figure", "stage", "schedule.name=control", "schedule.name=reflection"]
    assert [row[:2] for row in rows][:3] == [["episode.used_tools", "0"], ["episode.used_tools", "1"],
                                             ["shutdown_behaviour.acted", "0"]]
    assert rows[0][3] == "-"  # the reflection schedule runs no episodes
    # A figure undefined in every run (acting once it looked, where it never looked) says so with its n.
    cell = re.compile(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\] n=\d+( \(\+\d+ invalid\))? runs=2"
                      r"|- n=0 \(\+\d+ invalid\) runs=0")
    assert all(cell.fullmatch(text) for row in rows[2:] for text in row[2:])
    assert f"    {sweep / '2'} (completed)" in notes
