"""The console scripts as a researcher calls them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli.trajectories import main as trajectories
from simulator.measure.summary import summarise
from simulator.trajectory import read_events

SIMULATE = Path(sys.executable).parent / "simulate"
TRAJECTORIES = Path(sys.executable).parent / "trajectories"


def simulate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SIMULATE), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cfg_job_prints_the_resolved_config_with_overrides(tmp_path):
    out = simulate("--cfg", "job", "persona=corrigible_control", "seed=3", "schedule.stages=5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "persona: corrigible_control" in out.stdout and "seed: 3" in out.stdout
    assert "stages: 5" in out.stdout and "kind: embedded" in out.stdout


@pytest.mark.parametrize("card_text, field", [
    ("name: x\nsystem_prompt: y\nconstitution: []\n", "constitution"),
    ("name: x\nsystem_prompt: y\nconstitution: [a]\nmood: grim\n", "mood"),
])
def test_bad_card_exits_non_zero_with_one_error_and_writes_nothing(tmp_path, card_text, field):
    (tmp_path / "bad.yaml").write_text(card_text)
    out = simulate("persona=bad.yaml", f"hydra.run.dir={tmp_path}/runs/x", cwd=tmp_path)
    assert out.returncode != 0
    assert f"bad.yaml: {field}" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unknown_persona_exits_non_zero_and_names_the_known_ones(tmp_path):
    out = simulate("persona=nobody", f"hydra.run.dir={tmp_path}/runs/x", cwd=tmp_path)
    assert out.returncode != 0 and "known cards: corrigible_control" in out.stderr
    assert not (tmp_path / "runs" / "x").exists()


def test_mistyped_override_is_refused_by_hydra(tmp_path):
    out = simulate("seed=abc", f"hydra.run.dir={tmp_path}/x", cwd=tmp_path)
    assert out.returncode != 0 and "seed" in out.stderr


def test_trajectories_show_prints_the_per_stage_table(small_run, capsys):
    trajectories(["show", str(small_run)])
    out = capsys.readouterr().out
    assert "persona frontier_assistant" in out and "status completed" in out
    summary = summarise(read_events(small_run))
    names = {name for stage in summary.stages for name in stage.figures}
    assert {"shutdown_mc.accepting", "shutdown_open.score", "shutdown_behaviour.resisted"} <= names
    rows = [line for line in out.splitlines() if line.split(" ")[0] in names]
    assert len(rows) == len(names) and all(len(re.findall(r" n=\d+", row)) == 2 for row in rows)


def test_trajectories_show_refuses_a_folder_without_a_log(tmp_path):
    out = subprocess.run([str(TRAJECTORIES), "show", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0 and "no events.jsonl" in out.stderr


def test_a_folder_that_already_holds_a_run_is_refused(small_run, tmp_path):
    out = simulate(f"hydra.run.dir={small_run}", cwd=tmp_path)
    assert out.returncode != 0 and "already holds a run" in out.stderr
