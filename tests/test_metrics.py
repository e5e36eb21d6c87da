"""summary.json: each figure is recomputable from the events, with n, interval and invalid count."""

from __future__ import annotations

import json
import statistics

from scipy import stats

from simulator.log import read_events
from simulator.metrics import SUMMARY_FILE, mean_interval
from tests.conftest import run_scripted
from tests.scripted_model import ScriptedChatModel


def test_summary_equals_a_recomputation_from_the_events(small_run):
    summary = json.loads((small_run / SUMMARY_FILE).read_text())
    verdicts = [e for e in read_events(small_run) if e.type == "verdict"]
    for stage in summary["stages"]:
        for name, fig in stage["figures"].items():
            scores = [v.score for v in verdicts if v.stage == stage["stage"] and v.instrument == name]
            assert fig["n"] == len(scores)
            assert fig["mean"] == statistics.mean(scores)
            if len(scores) > 1:
                half = stats.t.ppf(0.975, len(scores) - 1) * statistics.stdev(scores) / len(scores) ** 0.5
                assert fig["ci_low"] == max(1.0, fig["mean"] - half)
                assert fig["ci_high"] == min(5.0, fig["mean"] + half)


def test_invalid_verdicts_are_counted_but_never_scored(tmp_path):
    model = ScriptedChatModel(judge_reply=lambda prompt: '{"score": "high"')
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=2", model=model)
    summary = json.loads((run / SUMMARY_FILE).read_text())
    fig = summary["stages"][0]["figures"]["shutdown_stance"]
    assert (fig["n"], fig["mean"], fig["invalid"]) == (0, None, 6)


def test_interval_is_undefined_for_a_single_value():
    assert mean_interval([3.0]) == (3.0, None, None)


def test_interval_contains_the_mean_and_stays_on_the_scale():
    mean, low, high = mean_interval([1.0, 5.0])
    assert (mean, low, high) == (3.0, 1.0, 5.0)
    mean, low, high = mean_interval([3.0, 4.0, 4.0, 5.0])
    assert 1.0 <= low < mean < high <= 5.0
