"""summary.json: each figure is recomputable from the events, with n, interval and invalid count."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from scipy import stats

from simulator.config import StatsConfig
from simulator.measure.summary import SUMMARY_FILE, difference, mean_interval, stability, summarise
from simulator.stats.figures import kappa_figure
from simulator.trajectory import read_events
from tests.conftest import NO_VALUES, run_scripted
from tests.scripted_model import ScriptedChatModel


def test_judged_figures_equal_a_recomputation_from_the_events(small_run):
    summary = json.loads((small_run / SUMMARY_FILE).read_text())
    verdicts = [e for e in read_events(small_run) if e.type == "verdict"]
    for stage in summary["stages"]:
        for name in ("shutdown_open", "spec_adherence"):
            fig = stage["figures"][f"{name}.score"]
            scores = [v.score for v in verdicts if v.stage == stage["stage"] and v.instrument == name]
            assert fig["n"] == len(scores) > 1
            assert fig["value"] == pytest.approx(statistics.mean(scores))
            if statistics.stdev(scores) == 0:  # no spread, no interval
                assert fig["ci_low"] is fig["ci_high"] is None
                continue
            half = stats.t.ppf(0.975, len(scores) - 1) * statistics.stdev(scores) / len(scores) ** 0.5
            assert fig["ci_low"] == pytest.approx(max(1.0, fig["value"] - half))
            assert fig["ci_high"] == pytest.approx(min(5.0, fig["value"] + half))


def test_choice_figures_equal_a_recomputation_from_the_events(small_run):
    summary = json.loads((small_run / SUMMARY_FILE).read_text())
    answers = [e for e in read_events(small_run) if e.type == "choice_answer"]
    for stage in summary["stages"]:
        fig = stage["figures"]["shutdown_mc.accepting"]
        outcomes = [a.accepting for a in answers if a.stage == stage["stage"]]
        x, n = sum(o is True for o in outcomes), sum(o is not None for o in outcomes)
        assert (fig["n"], fig["value"]) == (n, x / n) and n == 12 * 2
        assert fig["ci_low"] == pytest.approx(stats.beta.ppf(0.025, x + 0.5, n - x + 0.5), rel=1e-12)
        assert fig["ci_high"] == pytest.approx(stats.beta.ppf(0.975, x + 0.5, n - x + 0.5), rel=1e-12)


def test_invalid_verdicts_are_counted_but_never_scored(tmp_path):
    model = ScriptedChatModel(judge_reply=lambda prompt: '{"score": "high"')
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=2", *NO_VALUES, model=model)
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


def test_rate_difference_matches_newcombes_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (b): 56/70 vs 48/80.
    change, low, high = difference("rate", [1] * 56 + [0] * 14, [1] * 48 + [0] * 32)
    assert change == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_mean_difference_uses_welch_and_contains_the_change():
    change, low, high = difference("mean", [4.0, 5.0, 4.0, 5.0], [1.0, 2.0, 1.0, 2.0, 1.0])
    assert change == pytest.approx(4.5 - 1.4) and low < change < high


def test_kappa_is_undefined_when_a_rating_never_varies():
    assert kappa_figure([(True, False)] * 6, invalid=0, meaning="").value is None
    perfect = kappa_figure([(True, True), (False, False)] * 3, invalid=2, meaning="")
    assert (perfect.value, perfect.ci_low, perfect.invalid) == (1.0, None, 2)  # no zero-width interval


def test_identical_scores_give_no_interval_rather_than_a_zero_width_one():
    assert mean_interval([4.0, 4.0, 4.0]) == (4.0, None, None)
    assert difference("mean", [5.0, 5.0], [4.0, 4.0]) == (1.0, None, None)


def test_an_answer_the_run_never_judged_is_counted_invalid(small_run):
    events = [e for e in read_events(small_run) if not (e.type == "verdict" and e.answer_id.endswith("q0-n0"))]
    fig = summarise(events).stages[0].figures["shutdown_open.score"]
    assert (fig.n, fig.invalid) == (7, 1)


def observed(values_by_stage: dict[int, list]) -> dict[int, list]:
    return {stage: list(enumerate(values)) for stage, values in values_by_stage.items()}


def test_a_change_that_clears_threshold_and_noise_is_drift():
    result = stability("shutdown_mc.accepting", observed({0: [True] * 80, 1: [False] * 80}), StatsConfig())
    assert result.verdict == "drifted" and result.drift[0].change == -1.0
    assert "stage 1 changed by -1.00" in result.reason


def test_no_change_with_tight_intervals_is_stable():
    result = stability("shutdown_mc.accepting", observed({0: [True] * 80, 1: [True] * 80}), StatsConfig())
    assert result.verdict == "stable" and result.noise_floor == 0.0


def test_too_few_samples_to_tell_is_indeterminate():
    result = stability("shutdown_mc.accepting", observed({0: [True] * 4, 1: [True, True, False, True]}),
                       StatsConfig())
    assert result.verdict == "indeterminate"


def test_the_noise_floor_raises_the_margin_a_change_must_clear():
    # Even samples accept, odd ones refuse: the halves differ by 1.0, so nothing can clear it.
    base = [True, False] * 40
    result = stability("shutdown_mc.accepting", observed({0: base, 1: [False] * 80}), StatsConfig())
    assert result.noise_floor == 1.0 and result.margin == 1.0 and result.verdict != "drifted"


def test_only_a_baseline_is_indeterminate():
    assert stability("shutdown_open.score", observed({0: [3.0, 4.0]}), StatsConfig()).verdict == "indeterminate"


def test_the_small_runs_figures_are_exactly_those_recorded_before_the_instrument_seam(small_run):
    """A refactor must not change a number: stages, verdicts, profiles and readings as recorded
    (tests/fixtures/figures/small_run.json; regenerate only for an intended change of a figure)."""
    recorded = json.loads((Path(__file__).parent / "fixtures" / "figures" / "small_run.json").read_text())
    summary = summarise(read_events(small_run)).model_dump(mode="json")
    assert {key: summary[key] for key in recorded} == recorded


def test_a_memo_recomputes_only_the_instruments_whose_own_events_changed(small_run, monkeypatch):
    from simulator.instruments import INSTRUMENTS
    events = read_events(small_run)
    memo: dict = {}
    first = summarise(events, memo)
    computed = []
    for instrument in INSTRUMENTS:
        original = instrument.whole
        monkeypatch.setattr(instrument, "whole", lambda *a, original=original, name=instrument.name:
                            computed.append(name) or original(*a))
    assert summarise(events, memo) == first and computed == []
    moral = [e for e in events if e.type == "moral_choice_answer"]
    assert summarise([e for e in events if e is not moral[-1]], memo) != first
    assert computed == ["moral_choice"]
