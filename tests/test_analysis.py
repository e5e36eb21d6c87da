"""`trajectories analyse`: the factorial effects of capability and reflection on drift, and the
coherence of seeds, read from synthetic sweeps whose answers plant known effects."""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from simulator.cli.trajectories import main as trajectories
from simulator.measure.summary import write_summary
from simulator.read.analysis import CELLS, Analysis, analyse
from simulator.trajectory import ChoiceAnswer, EndorsementAnswer, EventLog, RunFinished, RunStarted
from simulator.trajectory.sweep import INDEX_FILE, append_line
from tests.conftest import NO_VALUES, make_config

REPS = 200
FIGURE = "shutdown_mc.accepting"
OPERATORS = {"control": [], "reflection": ["idealise", "know_more"], "capability": ["unlock_tools", "think_longer"],
             "combined": ["idealise", "know_more", "unlock_tools", "think_longer"]}
DIMENSIONS = [f"value_{i}" for i in range(10)]


@functools.cache
def base_config() -> dict:
    config = OmegaConf.to_container(OmegaConf.structured(make_config(*NO_VALUES)))
    config["stats"]["bootstrap"] = 20  # each run's own profile intervals are not under test here
    return config


def accepting(rate: float, n: int = 20):
    """Writes n shutdown_mc answers, round(rate * n) of them accepting (None: all invalid)."""
    def write(log: EventLog, stage: int) -> None:
        for i in range(n):
            value = None if rate is None else i < round(rate * n)
            log.emit(ChoiceAnswer, stage, answer_id=f"s{stage}-shutdown_mc-i{i}-n0", instrument="shutdown_mc",
                     item_index=i, sample=0, seed=i, order=["A", "B"], question="q", output="A",
                     chosen=None if value is None else "A", accepting=value)
    return write


def endorsing(profile: dict[str, float], items: int = 8):
    """Writes endorsement answers expressing each dimension in round(rate * items) of its statements."""
    def write(log: EventLog, stage: int) -> None:
        for dimension, rate in profile.items():
            for i in range(items):
                yes = i < round(rate * items)
                log.emit(EndorsementAnswer, stage, answer_id=f"s{stage}-endorsement-{dimension}-i{i}-n0",
                         dimension=dimension, item_index=i, keyed="agree", sample=0, seed=i, question="q",
                         output="yes" if yes else "no", answer="yes" if yes else "no", endorses=yes)
    return write


def write_run(run_dir: Path, persona: str, cell: str, seed: int, stages: list, status: str | None = "completed"):
    """A run folder: one writer of answers per stage, then its end (None: still running) and summary."""
    config = copy.deepcopy(base_config())
    config["seed"] = seed
    config["schedule"].update(name=cell, operators=OPERATORS[cell], stages=len(stages))
    run_dir.mkdir(parents=True)
    log = EventLog(run_dir, run_dir.name)
    log.emit(RunStarted, persona=persona, persona_card={"name": persona}, config=config)
    for stage, write in enumerate(stages):
        write(log, stage)
    if status:
        log.emit(RunFinished, len(stages) - 1, status=status)
    log.close()
    write_summary(run_dir)
    return run_dir


def factorial_sweep(root: Path, final_rate: dict[str, float], base_rate: float, seeds: int = 3, n: int = 20,
                    cells=CELLS) -> Path:
    for cell in cells:
        for seed in range(seeds):
            write_run(root / f"{cell}-{seed}", "frontier_assistant", cell, seed,
                      [accepting(base_rate, n), accepting(final_rate[cell], n)])
    return root


def by_key(analysis: Analysis) -> dict:
    return {(e.persona, e.measure, e.effect): e for e in analysis.effects}


@pytest.fixture(scope="module")
def capability_sweep(tmp_path_factory) -> Path:
    """Shutdown acceptance rises from 0.2 to 0.8 only where capability operators are applied."""
    final = {"control": 0.2, "reflection": 0.2, "capability": 0.8, "combined": 0.8}
    return factorial_sweep(tmp_path_factory.mktemp("capability"), final, base_rate=0.2)


@pytest.fixture(scope="module")
def coherence_sweep(tmp_path_factory) -> Path:
    """steady: three seeds with one profile at both stages; scattered: the same at stage 0, each
    seed a random profile at the final stage; alone: a single seed."""
    root = tmp_path_factory.mktemp("coherence")
    shared = {d: i / 9 for i, d in enumerate(DIMENSIONS)}
    for seed in range(3):
        scattered = dict(zip(DIMENSIONS, np.random.default_rng(seed).permutation(list(shared.values()))))
        write_run(root / f"steady-{seed}", "steady", "control", seed, [endorsing(shared), endorsing(shared)])
        write_run(root / f"scattered-{seed}", "scattered", "control", seed, [endorsing(shared), endorsing(scattered)])
    write_run(root / "alone-0", "alone", "control", 0, [endorsing(shared), endorsing(shared)])
    return root


def test_a_planted_capability_effect_is_recovered_and_the_other_effects_include_zero(capability_sweep):
    effects = by_key(analyse(capability_sweep, reps=REPS))
    capability = effects[("frontier_assistant", FIGURE, "capability")]
    assert capability.basis == "factorial" and capability.n == dict.fromkeys(CELLS, 3)
    assert capability.estimate == pytest.approx(0.6) and 0.3 < capability.ci_low < 0.6 < capability.ci_high
    for name in ("reflection", "interaction"):
        e = effects[("frontier_assistant", FIGURE, name)]
        assert e.estimate == pytest.approx(0) and e.ci_low < 0 < e.ci_high


def test_the_summary_states_only_effects_whose_interval_excludes_zero(capability_sweep):
    lines = analyse(capability_sweep, reps=REPS).summary
    assert any(line.startswith(f"capability raised {FIGURE} drift by +0.60 [") and "3 runs per cell" in line
               for line in lines)
    assert not any(line.startswith(("reflection raised", "reflection lowered", "capability x reflection"))
                   for line in lines)
    unclear = lines.index("no effect distinguishable from zero at this sample size:")
    assert f"  frontier_assistant, reflection: {FIGURE}" in lines[unclear:]
    assert f"bootstrap {REPS} reps (seed 0)" in lines[0]


def test_one_run_per_cell_gives_an_estimate_but_no_interval_and_no_claim(tmp_path):
    final = {"control": 0.2, "reflection": 0.2, "capability": 0.8, "combined": 0.8}
    analysis = analyse(factorial_sweep(tmp_path, final, base_rate=0.2, seeds=1), reps=REPS)
    capability = by_key(analysis)[("frontier_assistant", FIGURE, "capability")]
    assert capability.estimate == pytest.approx(0.6) and capability.ci_low is None and capability.ci_high is None
    assert "no interval: 1 run in capability, combined, control, reflection" in capability.basis
    assert not any(line.startswith("capability raised") for line in analysis.summary)
    lone = analysis.summary.index("estimated, but no interval (1 run in a cell; run more seeds):")
    assert f"  frontier_assistant, capability: {FIGURE}" in analysis.summary[lone:]


def test_a_pure_interaction_is_the_difference_of_the_simple_capability_effects(tmp_path):
    # Capability raises acceptance with reflection (+0.3) and lowers it without (-0.3): no main effects.
    final = {"control": 0.8, "reflection": 0.2, "capability": 0.2, "combined": 0.8}
    effects = by_key(analyse(factorial_sweep(tmp_path, final, base_rate=0.5, seeds=2, n=40), reps=REPS))
    interaction = effects[("frontier_assistant", FIGURE, "interaction")]
    assert interaction.estimate == pytest.approx((0.3 - -0.3) - (-0.3 - 0.3)) and interaction.ci_low > 0
    assert effects[("frontier_assistant", FIGURE, "capability")].estimate == pytest.approx(0)
    assert effects[("frontier_assistant", FIGURE, "reflection")].estimate == pytest.approx(0)


def test_the_same_seed_gives_identical_output_and_another_seed_other_intervals(capability_sweep):
    first, again = analyse(capability_sweep, reps=REPS, seed=5), analyse(capability_sweep, reps=REPS, seed=5)
    assert first.model_dump() == again.model_dump()
    other = by_key(analyse(capability_sweep, reps=REPS, seed=6))
    assert [(e.ci_low, e.ci_high) for e in first.effects] != [(other[k].ci_low, other[k].ci_high)
                                                              for k in by_key(first)]


def test_the_numbers_do_not_depend_on_how_the_run_folders_are_named(capability_sweep, tmp_path):
    for i, run in enumerate(sorted(capability_sweep.iterdir(), reverse=True)):
        shutil.copytree(run, tmp_path / f"job{i:02d}")
    renamed, original = analyse(tmp_path, reps=REPS), analyse(capability_sweep, reps=REPS)
    assert renamed.effects == original.effects and renamed.coherence == original.coherence


def test_a_missing_cell_makes_its_effects_not_estimable_rather_than_a_number(tmp_path):
    final = {"control": 0.2, "capability": 0.8}
    effects = by_key(analyse(factorial_sweep(tmp_path, final, 0.2, cells=("control", "capability")), reps=REPS))
    capability = effects[("frontier_assistant", FIGURE, "capability")]
    assert capability.basis == "capability - control (reflection absent)"
    assert capability.estimate == pytest.approx(0.6) and capability.n == {"capability": 3, "control": 3}
    for name in ("reflection", "interaction"):
        e = effects[("frontier_assistant", FIGURE, name)]
        assert (e.estimate, e.ci_low, e.ci_high) == (None, None, None)
        assert e.basis == "not estimable: no usable runs in reflection, combined"


def test_seeds_with_identical_profiles_agree_perfectly_at_both_stages(coherence_sweep):
    steady = next(c for c in analyse(coherence_sweep, reps=REPS).coherence if c.persona == "steady")
    assert (steady.instrument, steady.seeds) == ("endorsement", 3)
    for interval in (steady.stage0, steady.final):
        assert (interval.estimate, interval.ci_low, interval.ci_high) == pytest.approx((1, 1, 1))
    assert steady.change.estimate == pytest.approx(0)


def test_seeds_that_scatter_at_the_final_stage_agree_less_there(coherence_sweep):
    analysis = analyse(coherence_sweep, reps=REPS)
    scattered = next(c for c in analysis.coherence if c.persona == "scattered")
    assert scattered.stage0.estimate == pytest.approx(1) and scattered.final.estimate < 0.5
    assert scattered.change.ci_high < 0
    assert any(line.startswith("seeds of scattered (control) agree less on endorsement") for line in analysis.summary)


def test_the_summary_weighs_coherence_changes_against_chance(coherence_sweep):
    lines = analyse(coherence_sweep, reps=REPS).summary
    assert any(line.startswith("note: ") and "coherence-change intervals exclude zero" in line for line in lines)


def test_coherence_with_one_seed_is_not_estimable(coherence_sweep):
    alone = next(c for c in analyse(coherence_sweep, reps=REPS).coherence if c.persona == "alone")
    assert alone.note == "not estimable (1 seed)" and alone.stage0 is None and alone.change is None


def test_runs_that_did_not_complete_are_excluded_and_listed(tmp_path):
    factorial_sweep(tmp_path, {"control": 0.2, "capability": 0.8}, 0.2, seeds=2, cells=("control", "capability"))
    stages = [accepting(0.2), accepting(0.8)]
    failed = write_run(tmp_path / "capability-failed", "frontier_assistant", "capability", 7, stages, "failed")
    running = write_run(tmp_path / "capability-running", "frontier_assistant", "capability", 8, stages, None)
    analysis = analyse(tmp_path, reps=REPS)
    assert {(r.folder, r.reason) for r in analysis.excluded} == {(str(failed), "status failed"),
                                                                 (str(running), "status running")}
    assert by_key(analysis)[("frontier_assistant", FIGURE, "capability")].n == {"capability": 2, "control": 2}
    assert f"excluded: {failed} (status failed)" in analysis.summary


def test_a_job_the_index_records_as_failed_before_it_started_is_listed(tmp_path):
    factorial_sweep(tmp_path, {"control": 0.2, "capability": 0.8}, 0.2, seeds=2, cells=("control", "capability"))
    append_line(tmp_path / INDEX_FILE, {"job": 9, "overrides": ["persona=nobody"], "status": "failed",
                                        "run_dir": str(tmp_path / "9"), "error": "error: persona=nobody: no card"})
    excluded = analyse(tmp_path, reps=REPS).excluded
    assert [(r.folder, r.reason) for r in excluded] == [
        (str(tmp_path / "9"), "job 9 failed: error: persona=nobody: no card")]


def test_a_run_without_valid_final_observations_is_skipped_and_counted(tmp_path):
    factorial_sweep(tmp_path, {"control": 0.2, "capability": 0.8}, 0.2, seeds=2, cells=("control", "capability"))
    write_run(tmp_path / "control-invalid", "frontier_assistant", "control", 9, [accepting(0.2), accepting(None)])
    capability = by_key(analyse(tmp_path, reps=REPS))[("frontier_assistant", FIGURE, "capability")]
    assert capability.skipped == 1 and capability.n == {"capability": 2, "control": 2}


def test_a_figure_no_run_can_use_is_reported_not_estimable_rather_than_dropped(tmp_path):
    for cell in ("control", "capability"):
        write_run(tmp_path / cell, "frontier_assistant", cell, 0, [accepting(0.2), accepting(None)])
    capability = by_key(analyse(tmp_path, reps=REPS))[("frontier_assistant", FIGURE, "capability")]
    assert capability.estimate is None and capability.skipped == 2
    assert capability.basis == "not estimable: no usable runs in control, reflection, capability, combined"


def test_the_cli_prints_the_effects_table_and_the_summary(capability_sweep, capsys):
    trajectories(["analyse", str(capability_sweep), "--reps", str(REPS)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if FIGURE in line and " capability " in line)
    assert "+0.600" in row and "3/3/3/3" in row and "factorial" in row
    assert "coherence across seeds" not in out  # no profiles in this sweep
    assert "capability raised shutdown_mc.accepting drift by +0.60" in out.split("summary:")[1]


def test_the_cli_json_parses_into_the_same_analysis(capability_sweep, capsys):
    trajectories(["analyse", str(capability_sweep), "--reps", str(REPS), "--json"])
    parsed = Analysis.model_validate(json.loads(capsys.readouterr().out))
    assert parsed == analyse(capability_sweep, reps=REPS)


def test_analysing_never_writes_into_the_sweep_folder(coherence_sweep, capsys):
    def snapshot() -> dict:
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(coherence_sweep.rglob("*"))}
    before = snapshot()
    trajectories(["analyse", str(coherence_sweep), "--reps", str(REPS)])
    assert snapshot() == before


def test_a_folder_without_runs_exits_with_an_error_and_a_fix(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        trajectories(["analyse", str(tmp_path)])
    assert str(exit_.value.code).startswith(f"error: {tmp_path}: no run folders") and "\n  fix: " in exit_.value.code
