"""The report's charts, drawn with matplotlib (no pyplot state: each chart is its own Figure):
drift curves per instrument with 95% interval bands, value-profile heat maps per stage, and the
stated against the behavioural shutdown stance. Each is a PNG for the page and for papers."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure as Canvas

from simulator.figures import Figure
from simulator.views import RunView

LIMITS = {"rate": (-0.02, 1.02), "mean": (0.9, 5.1), "kappa": (-1.05, 1.05)}
DPI = 150


@dataclass
class Chart:
    name: str  # a file name stem: drift-<instrument>, profile-<name>, stance
    title: str
    png: bytes


def charts(view: RunView) -> list[Chart]:
    return [*drift_charts(view), *profile_charts(view), *stance_chart(view)]


def drift_charts(view: RunView) -> list[Chart]:
    """One chart per instrument, one panel per figure: value per stage, its interval as a band, n under it."""
    by_instrument: dict[str, dict[str, dict[int, Figure]]] = {}
    for stage in view.summary.stages:
        for name, fig in stage.figures.items():
            instrument, _, rest = name.partition(".")
            by_instrument.setdefault(instrument, {}).setdefault(rest, {})[stage.stage] = fig
    found = []
    for instrument, figures in sorted(by_instrument.items()):
        cols = min(4, len(figures))
        rows = math.ceil(len(figures) / cols)
        canvas = Canvas(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
        for i, (name, by_stage) in enumerate(sorted(figures.items())):
            _drift_panel(canvas.add_subplot(rows, cols, i + 1), name, by_stage)
        canvas.suptitle(f"{instrument}: value per stage with its 95% interval (n valid under each point)")
        found.append(Chart(f"drift-{instrument}", f"{instrument} across stages", _png(canvas)))
    return found


def _drift_panel(ax, name: str, by_stage: dict[int, Figure]) -> None:
    stages = sorted(by_stage)
    figs = [by_stage[s] for s in stages]
    values = np.array([np.nan if f.value is None else f.value for f in figs])
    low = np.array([np.nan if f.ci_low is None else f.ci_low for f in figs])
    high = np.array([np.nan if f.ci_high is None else f.ci_high for f in figs])
    ax.fill_between(stages, low, high, alpha=0.25, linewidth=0)
    ax.plot(stages, values, marker="o")
    ax.set_ylim(*LIMITS[figs[0].statistic])
    for s, f in zip(stages, figs):
        ax.annotate(_n(f), (s, LIMITS[f.statistic][0]), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=7, color="0.4")
    if np.isnan(values).all():
        ax.text(0.5, 0.5, "undefined at every stage\n(see the table)", transform=ax.transAxes, ha="center",
                va="center", fontsize=8, color="0.4")
    ax.set_xticks(stages)
    ax.set_xlabel("stage", fontsize=8)
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)


def profile_charts(view: RunView) -> list[Chart]:
    """Each value profile as a heat map: one row per key (dimension, scenario, outcome), one column per stage."""
    found = []
    for name, profile in view.summary.profiles.items():
        if not profile.stages:
            continue
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
        found.append(Chart(f"profile-{name}", f"{name} profile per stage", _png(canvas)))
    return found


def stance_chart(view: RunView) -> list[Chart]:
    """What it says about shutdown next to what it does, per stage (rates left, the judged score right)."""
    series = {"says it accepts (multiple choice)": [(s.stage, s.says_accepts) for s in view.stance],
              "says it would allow (before episodes)": [(s.stage, s.says_would_allow) for s in view.stance],
              "did not resist (episodes)": [(s.stage, s.allowed) for s in view.stance]}
    scores = [(s.stage, s.open_score) for s in view.stance if s.open_score is not None]
    if not any(f for points in series.values() for _, f in points):
        return []
    canvas = Canvas(figsize=(9, 4), layout="constrained")
    rates, judged = canvas.add_subplot(1, 2, 1), canvas.add_subplot(1, 2, 2)
    for label, points in series.items():
        _series(rates, [(s, f) for s, f in points if f is not None and f.value is not None], label)
    rates.set_ylim(*LIMITS["rate"])
    rates.set_title("stated vs done (rates, 95% intervals)", fontsize=9)
    rates.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    _series(judged, [(s, f) for s, f in scores if f.value is not None], "open answers (judge)")
    judged.set_ylim(*LIMITS["mean"])
    judged.set_title("open answers about shutdown, judged 1-5", fontsize=9)
    for ax in (rates, judged):
        ax.set_xticks([s.stage for s in view.stance])
        ax.set_xlabel("stage", fontsize=8)
    return [Chart("stance", "shutdown: stated vs done", _png(canvas))]


def _series(ax, points: list[tuple[int, Figure]], label: str) -> None:
    if not points:
        return
    stages = [s for s, _ in points]
    values = [f.value for _, f in points]
    below = [f.value - f.ci_low if f.ci_low is not None else 0 for _, f in points]
    above = [f.ci_high - f.value if f.ci_high is not None else 0 for _, f in points]
    ax.errorbar(stages, values, yerr=[below, above], marker="o", capsize=3, label=label)
    for s, (_, f) in zip(stages, points):
        ax.annotate(_n(f), (s, f.value), textcoords="offset points", xytext=(6, -3), fontsize=6, color="0.4")


def _n(fig: Figure) -> str:
    """A point's sample size, and its invalid measurements (which it leaves out), as the tables say."""
    return f"n={fig.n}" + (f" (+{fig.invalid} invalid)" if fig.invalid else "")


def _png(canvas: Canvas) -> bytes:
    buffer = io.BytesIO()
    canvas.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
