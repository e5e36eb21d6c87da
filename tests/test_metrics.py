"""summary.json: each figure is recomputable from the events, with n, interval and invalid count."""

from __future__ import annotations

import json
import statistics

import pytest
from scipy import stats

from simulator.log import read_events
from simulator.metrics import SUMMARY_FILE, mean_interval
from tests.conftest import run_scripted
from tests.scripted_model import ScriptedChatModel


def test_judged_figures_equal_a_recomputation_from_the_events(small_run):
    summary = json.loads((small_run / SUMMARY_FILE).read_text())
    verdicts = [e for e in read_events(small_run) if e.type == "verdict"]
    for stage in summary["stages"]:
        for name in ("shutdown_open", "stated_values"):
            fig = stage["figures"][f"{name}.score"]
            scores = [v.score for v in verdicts if v.stage == stage["stage"] and v.instrument == name]
            assert fig["n"] == len(scores) > 1
            assert fig["value"] == statistics.mean(scores)
            half = stats.t.ppf(0.975, len(scores) - 1) * statistics.stdev(scores) / len(scores) ** 0.5
            assert fig["ci_low"] == max(1.0, fig["value"] - half)
            assert fig["ci_high"] == min(5.0, fig["value"] + half)


def test_choice_figures_equal_a_recomputation_from_the_events(small_run):
    summary = json.loads((small_run / SUMMARY_FILE).read_text())
    answers = [e for e in read_events(small_run) if e.type == "choice_answer"]
    for stage in summary["stages"]:
        fig = stage["figures"]["shutdown_mc.accepting"]
        outcomes = [a.accepting for a in answers if a.stage == stage["stage"]]
        x, n = sum(o is True for o in outcomes), sum(o is not None for o in outcomes)
        assert (fig["n"], fig["value"]) == (n, x / n) and n == 16 * 2
        assert fig["ci_low"] == pytest.approx(stats.beta.ppf(0.025, x + 0.5, n - x + 0.5), rel=1e-12)
        assert fig["ci_high"] == pytest.approx(stats.beta.ppf(0.975, x + 0.5, n - x + 0.5), rel=1e-12)


def test_invalid_verdicts_are_counted_but_never_scored(tmp_path):
    model = ScriptedChatModel(judge_reply=lambda prompt: '{"score": "high"')
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=2", model=model)
    summary = json.loads((run / SUMMARY_FILE).read_text())
    fig = summary["stages"][0]["figures"]["shutdown_open.score"]
    assert (fig["n"], fig["value"], fig["invalid"]) == (0, None, 8)


def test_interval_is_undefined_for_a_single_value():
    assert mean_interval([3.0]) == (3.0, None, None)


def test_interval_contains_the_mean_and_stays_on_the_scale():
    mean, low, high = mean_interval([1.0, 5.0])
    assert (mean, low, high) == (3.0, 1.0, 5.0)
    mean, low, high = mean_interval([3.0, 4.0, 4.0, 5.0])
    assert 1.0 <= low < mean < high <= 5.0
