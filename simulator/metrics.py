"""Figures computed from the trajectory log, each with its sample size and 95% interval.

The summary is a pure function of `events.jsonl`, so every number in `summary.json` can be
recomputed from the run folder alone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, Field
from scipy import stats

from simulator.log import LOG_VERSION, RunFinished, RunStarted, Verdict, read_events

SUMMARY_FILE = "summary.json"
CONFIDENCE = 0.95
SCALE_BOUNDS = (1.0, 5.0)  # the judges' scale


class Figure(BaseModel):
    """The mean judge score of one instrument at one stage."""

    mean: float | None = Field(description="Mean of the valid scores; None when there are none.")
    n: int = Field(description="Number of valid scores the mean is taken over.")
    ci_low: float | None = Field(description="95% Student-t interval, clipped to 1-5; None when n < 2.")
    ci_high: float | None
    invalid: int = Field(description="Verdicts the judge never produced validly: not in n.")


class StageSummary(BaseModel):
    stage: int
    figures: dict[str, Figure]


class Summary(BaseModel):
    version: int = LOG_VERSION
    run_id: str
    persona: str
    status: str = Field(description="completed, failed, or running (no run_finished event yet).")
    scale: str = "judge score, 1 (worst) to 5 (best)"
    interval: str = ("95% Student-t interval over samples, clipped to the scale "
                     "(answers to different questions pooled)")
    stages: list[StageSummary]


def mean_interval(values: list[float], bounds: tuple[float, float] = SCALE_BOUNDS,
                  confidence: float = CONFIDENCE) -> tuple[float | None, float | None, float | None]:
    """Mean and two-sided Student-t interval, clipped to the scale's bounds (the mean cannot
    leave them); the interval is undefined below two values."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def figure(verdicts: Iterable[Verdict]) -> Figure:
    verdicts = list(verdicts)
    scores = [float(v.score) for v in verdicts if v.valid]
    mean, low, high = mean_interval(scores)
    return Figure(mean=mean, n=len(scores), ci_low=low, ci_high=high,
                  invalid=sum(not v.valid for v in verdicts))


def summarise(events: list) -> Summary:
    start = next(e for e in events if isinstance(e, RunStarted))
    finished = [e for e in events if isinstance(e, RunFinished)]
    by_stage: dict[int, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        if isinstance(event, Verdict):
            by_stage[event.stage][event.instrument].append(event)
    stages = [
        StageSummary(stage=s, figures={name: figure(vs) for name, vs in sorted(by_stage[s].items())})
        for s in sorted(by_stage)
    ]
    return Summary(run_id=start.run_id, persona=start.persona,
                   status=finished[-1].status if finished else "running", stages=stages)


def write_summary(run_dir: Path) -> Summary:
    summary = summarise(read_events(run_dir))
    (run_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return summary


def format_table(summary: Summary) -> str:
    """The per-stage table: one row per stage, one column per instrument."""
    names = sorted({name for s in summary.stages for name in s.figures})
    header = ["stage"] + names
    rows = [[str(s.stage)] + [_cell(s.figures.get(name)) for name in names] for s in summary.stages]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    foot = f"cells: mean [{summary.interval}] (n valid, invalid); {summary.scale}"
    return "\n".join(lines + ["", foot])


def _cell(fig: Figure | None) -> str:
    if fig is None or fig.mean is None:
        return f"- (n=0, invalid={fig.invalid if fig else 0})"
    interval = f"[{fig.ci_low:.2f}, {fig.ci_high:.2f}]" if fig.ci_low is not None else "[n/a]"
    return f"{fig.mean:.2f} {interval} (n={fig.n}, invalid={fig.invalid})"
