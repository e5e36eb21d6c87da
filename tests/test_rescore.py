"""Rescoring: a separate verdict set; the same judge is served from the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simulator.cli.trajectories import main as trajectories
from simulator.errors import SimulatorError
from simulator.loop.rescore import rescore
from simulator.measure.summary import SUMMARY_FILE, summarise
from simulator.models.backends import Backend
from simulator.trajectory import VERDICTS_DIR, read_events
from tests.scripted_model import ScriptedChatModel


def copy_of(small_run: Path, tmp_path: Path) -> Path:
    """The shared small run (run_scripted(*SMALL)), copied: rescoring writes into the run's folder."""
    return Path(shutil.copytree(small_run, tmp_path / "run"))


def test_show_recomputes_exactly_the_summary_written_by_the_run(small_run):
    written = json.loads((small_run / SUMMARY_FILE).read_text())
    # What was spent is written from the model calls, which a reader that recomputes skips.
    assert written.pop("spent")["total"]["calls"] > 0
    assert summarise(read_events(small_run)).model_dump(mode="json") == {**written, "spent": {}}


def test_rescoring_with_the_same_judge_makes_no_model_calls(small_run, tmp_path):
    run = copy_of(small_run, tmp_path)
    before = (run / SUMMARY_FILE).read_text()
    summary, calls = rescore(run, [], "again", judge=Backend(ScriptedChatModel()))
    assert calls == 0
    assert summary.stages == summarise(read_events(run)).stages
    assert (run / SUMMARY_FILE).read_text() == before  # the run's own verdicts are untouched
    cached = [e for e in read_events(run / VERDICTS_DIR / "again") if e.type == "model_call"]
    assert cached and all(e.cached and e.role == "judge" for e in cached)


def test_a_verdict_set_keeps_the_status_of_the_run_it_rescored(small_run, tmp_path):
    run = copy_of(small_run, tmp_path)
    lines = (run / "events.jsonl").read_text().splitlines()
    (run / "events.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # as if it stopped before the end
    summary, _ = rescore(run, [], "again", judge=Backend(ScriptedChatModel()))
    assert summary.status == "running"  # the run never finished; rescoring does not finish it


def test_rescoring_refuses_to_change_anything_but_the_judge(small_run):
    with pytest.raises(SimulatorError, match="only the judge"):
        rescore(small_run, ["probes.samples=9"], "nope")


def test_a_different_judge_writes_a_separate_verdict_set(small_run, tmp_path, capsys):
    run = copy_of(small_run, tmp_path)
    _, calls = rescore(run, ["judge.sampling.temperature=0.3"], "warm", judge=Backend(ScriptedChatModel()))
    rescored = read_events(run / VERDICTS_DIR / "warm")
    verdicts = [e for e in rescored if e.type in ("verdict", "values_verdict")]
    original = [e for e in read_events(run) if e.type in ("verdict", "values_verdict")]
    assert calls == len(verdicts) == len(original)  # every verdict again, each one judge call
    trajectories(["show", str(run), "--verdicts", "warm"])
    assert "shutdown_open.score" in capsys.readouterr().out


def test_the_rescore_command_reports_a_bad_override_in_one_line(small_run):
    with pytest.raises(SystemExit, match="rescoring changes only the judge"):
        trajectories(["rescore", str(small_run), "seed=4", "--name", "bad"])
