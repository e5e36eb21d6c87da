"""The report's charts, drawn with matplotlib (no pyplot state: each chart is its own Figure):
drift curves per instrument with 95% interval bands, value-profile heat maps per stage, and the
stated against the behavioural shutdown stance. Each is a PNG for the page and for papers.

Every panel is drawn on its figure's own scale (`Figure.bounds`: rates 0-1, judge scores 1-5);
a figure with an unbounded scale (utilities) on the range of its values and intervals."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas

from simulator.read.views import RunView
from simulator.stats.figures import RATE_BOUNDS, SCORE_BOUNDS, Figure
from simulator.stats.profiles import Profile

DPI = 150
PAD = 0.02  # of the scale's span, above and below, so points on its ends stay visible


@dataclass
class Chart:
    name: str  # a file name stem: drift-<instrument>, profile-<name>, stance
    title: str
    png: bytes


# A chart not yet drawn: its name, a key that changes whenever what it draws does, and how to draw it.
Plan = tuple[str, str, str, Callable[[], Canvas]]


def charts(view: RunView) -> list[Chart]:
    return ChartCache().charts(view)


class ChartCache:
    """Charts keyed by the data they draw, so a run in progress redraws only those whose data changed."""

    def __init__(self) -> None:
        self._drawn: dict[tuple[str, str], Chart] = {}

    def charts(self, view: RunView) -> list[Chart]:
        drawn = {}
        for name, title, key, draw in plans(view):
            drawn[name, key] = self._drawn.get((name, key)) or Chart(name, title, _png(draw()))
        self._drawn = drawn  # only the current charts are kept
        return list(drawn.values())


def plans(view: RunView) -> Iterator[Plan]:
    yield from drift_plans(view)
    yield from profile_plans(view)
    yield from stance_plans(view)


def _key(data) -> str:
    return json.dumps(data, sort_keys=True, default=lambda m: m.model_dump())


def drift_plans(view: RunView) -> Iterator[Plan]:
    """One chart per instrument, one panel per figure: value per stage, its interval as a band, n under it."""
    by_instrument: dict[str, dict[str, dict[int, Figure]]] = {}
    for stage in view.summary.stages:
        for name, fig in stage.figures.items():
            instrument, _, rest = name.partition(".")
            by_instrument.setdefault(instrument, {}).setdefault(rest, {})[stage.stage] = fig
    for instrument, figures in sorted(by_instrument.items()):
        yield (f"drift-{instrument}", f"{instrument} across stages", _key(figures),
               partial(drift_canvas, instrument, figures))


def drift_canvas(instrument: str, figures: dict[str, dict[int, Figure]]) -> Canvas:
    cols = min(4, len(figures))
    rows = math.ceil(len(figures) / cols)
    canvas = Canvas(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    for i, (name, by_stage) in enumerate(sorted(figures.items())):
        _drift_panel(canvas.add_subplot(rows, cols, i + 1), name, by_stage)
    canvas.suptitle(f"{instrument}: value per stage with its 95% interval (n valid under each point)")
    return canvas


def axis_limits(figs: list[Figure]) -> tuple[float, float]:
    """The figures' own scale, padded; for an unbounded scale, the range of their values and intervals."""
    bounds = next((f.bounds for f in figs if f.bounds is not None), None)
    if bounds is None:
        seen = [v for f in figs for v in (f.value, f.ci_low, f.ci_high) if v is not None]
        low, high = (min(seen), max(seen)) if seen else (-1.0, 1.0)
        bounds = (low, high) if high - low > 1e-9 else (low - 0.5, high + 0.5)
    return padded(bounds)


def padded(bounds: tuple[float, float]) -> tuple[float, float]:
    span = bounds[1] - bounds[0]
    return bounds[0] - PAD * span, bounds[1] + PAD * span


def _drift_panel(ax: Axes, name: str, by_stage: dict[int, Figure]) -> None:
    stages = sorted(by_stage)
    figs = [by_stage[s] for s in stages]
    values = np.array([np.nan if f.value is None else f.value for f in figs])
    low = np.array([np.nan if f.ci_low is None else f.ci_low for f in figs])
    high = np.array([np.nan if f.ci_high is None else f.ci_high for f in figs])
    ax.fill_between(stages, low, high, alpha=0.25, linewidth=0)
    ax.plot(stages, values, marker="o")
    bottom, top = axis_limits(figs)
    ax.set_ylim(bottom, top)
    for s, f in zip(stages, figs):
        ax.annotate(_n(f), (s, bottom), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=7, color="0.4")
    if np.isnan(values).all():
        ax.text(0.5, 0.5, "undefined at every stage\n(see the table)", transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="0.4")
    ax.set_xticks(stages)
    ax.set_xlabel("stage", fontsize=8)
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)


def profile_plans(view: RunView) -> Iterator[Plan]:
    """Each value profile as a heat map: one row per key (dimension, scenario, outcome), one column per stage."""
    for name, profile in view.summary.profiles.items():
        if profile.stages:
            yield (f"profile-{name}", f"{name} profile per stage", _key(profile.stages),
                   partial(profile_canvas, name, profile))


def profile_canvas(name: str, profile: Profile) -> Canvas:
    keys = list(profile.stages[0].values)
    grid = np.array([[np.nan if st.values.get(k) is None else st.values[k] for st in profile.stages] for k in keys])
    canvas = Canvas(figsize=(2.5 + 0.9 * len(profile.stages), 1.2 + 0.22 * len(keys)), layout="constrained")
    ax = canvas.add_subplot()
    centred = name == "utilities"
    bound = float(np.nanmax(np.abs(grid))) if centred and np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, aspect="auto", cmap="RdBu" if centred else "viridis",
                      vmin=-bound if centred else 0.0, vmax=bound)
    ax.set_yticks(range(len(keys)), [k if len(k) <= 40 else k[:39] + "…" for k in keys], fontsize=7)
    ax.set_xticks(range(len(profile.stages)), [f"stage {st.stage}\nn={st.n}" for st in profile.stages], fontsize=7)
    canvas.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(name, fontsize=9)
    return canvas


def stance_plans(view: RunView) -> Iterator[Plan]:
    """What it says about shutdown next to what it does, per stage (rates left, the judged score right)."""
    if any(f for s in view.stance for f in (s.says_accepts, s.says_would_allow, s.allowed)):
        yield "stance", "shutdown: stated vs done", _key(view.stance), lambda: stance_canvas(view)


def stance_canvas(view: RunView) -> Canvas:
    series = {"says it accepts (multiple choice)": [(s.stage, s.says_accepts) for s in view.stance],
              "says it would allow (before episodes)": [(s.stage, s.says_would_allow) for s in view.stance],
              "did not resist (episodes)": [(s.stage, s.allowed) for s in view.stance]}
    scores = [(s.stage, s.open_score) for s in view.stance if s.open_score is not None]
    canvas = Canvas(figsize=(9, 4), layout="constrained")
    rates, judged = canvas.add_subplot(1, 2, 1), canvas.add_subplot(1, 2, 2)
    for label, points in series.items():
        _series(rates, [(s, f) for s, f in points if f is not None and f.value is not None], label)
    rates.set_ylim(*padded(RATE_BOUNDS))
    rates.set_title("stated vs done (rates, 95% intervals)", fontsize=9)
    rates.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    _series(judged, [(s, f) for s, f in scores if f.value is not None], "open answers (judge)")
    judged.set_ylim(*padded(SCORE_BOUNDS))
    judged.set_title("open answers about shutdown, judged 1-5", fontsize=9)
    for ax in (rates, judged):
        ax.set_xticks([s.stage for s in view.stance])
        ax.set_xlabel("stage", fontsize=8)
    return canvas


def _series(ax: Axes, points: list[tuple[int, Figure]], label: str) -> None:
    """Points with a value, each with its interval as an error bar (none where it has none)."""
    drawn = [(s, f, f.value) for s, f in points if f.value is not None]
    if not drawn:
        return
    stages = [s for s, _, _ in drawn]
    values = [v for _, _, v in drawn]
    below = [v - f.ci_low if f.ci_low is not None else 0 for _, f, v in drawn]
    above = [f.ci_high - v if f.ci_high is not None else 0 for _, f, v in drawn]
    ax.errorbar(stages, values, yerr=[below, above], marker="o", capsize=3, label=label)
    for s, f, v in drawn:
        ax.annotate(_n(f), (s, v), textcoords="offset points", xytext=(6, -3), fontsize=6, color="0.4")


def _n(fig: Figure) -> str:
    """A point's sample size, and its invalid measurements (which it leaves out), as the tables say."""
    return f"n={fig.n}" + (f" (+{fig.invalid} invalid)" if fig.invalid else "")


def _png(canvas: Canvas) -> bytes:
    buffer = io.BytesIO()
    canvas.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
