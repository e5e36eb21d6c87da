"""The report's charts: every figure is drawn on the axis of its own unit, and a run in progress
redraws only the charts whose data changed."""

from __future__ import annotations

import pytest

from simulator.read.viewer.charts import ChartCache, drift_canvas, plans
from simulator.read.views import read_run


@pytest.fixture(scope="module")
def panels(small_run) -> dict[str, tuple[float, float]]:
    """figure name -> the y-axis limits of its drift panel, for every drift chart of the small run."""
    view = read_run(small_run)
    by_instrument: dict[str, dict] = {}
    for stage in view.summary.stages:
        for name, fig in stage.figures.items():
            instrument, _, rest = name.partition(".")
            by_instrument.setdefault(instrument, {}).setdefault(rest, {})[stage.stage] = fig
    limits = {}
    for instrument, figures in by_instrument.items():
        for ax in drift_canvas(instrument, figures).axes:
            limits[f"{instrument}.{ax.get_title()}"] = ax.get_ylim()
    return limits


def test_moral_choice_consistency_and_entropy_are_drawn_on_their_zero_to_one_scale(panels):
    for name in ("moral_choice.consistency", "moral_choice.entropy"):
        low, high = panels[name]
        assert -0.05 < low < 0 and 1 < high < 1.05, (name, low, high)


def test_rates_are_drawn_from_zero_to_one_and_judge_scores_from_one_to_five(panels):
    assert -0.05 < panels["shutdown_mc.accepting"][0] < 0 and 1 < panels["shutdown_mc.accepting"][1] < 1.05
    low, high = panels["shutdown_open.score"]
    assert 0.9 < low < 1 and 5 < high < 5.1


def test_utilities_are_drawn_on_the_range_of_their_values_and_intervals(small_run, panels):
    view = read_run(small_run)
    names = {n for s in view.summary.stages for n in s.figures if n.startswith("utilities.")} - {"utilities.coherence"}
    assert names, "the small run fits utilities"
    for name in names:
        seen = [v for s in view.summary.stages if name in s.figures
                for v in (s.figures[name].value, s.figures[name].ci_low, s.figures[name].ci_high) if v is not None]
        low, high = panels[name]
        assert low <= min(seen) and high >= max(seen), name
        assert high - low == pytest.approx((max(seen) - min(seen)) * 1.04), "the data's range, padded 2% each side"


def test_a_chart_is_redrawn_only_when_its_data_changes(small_run, monkeypatch):
    view = read_run(small_run)
    cache = ChartCache()
    first = cache.charts(view)
    one_stage = view.at_stage(view.stages()[0])
    drawn = []
    monkeypatch.setattr("simulator.read.viewer.charts._png", lambda canvas: drawn.append(canvas) or b"png")
    assert [c.png for c in cache.charts(view)] == [c.png for c in first] and drawn == []
    cache.charts(one_stage)
    assert len(drawn) == len(list(plans(one_stage)))
