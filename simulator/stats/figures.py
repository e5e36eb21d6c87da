"""A figure: a value with its sample size, its 95% interval and its invalid count; and the
intervals the summaries use (one place, so every instrument is held to the same statistics)."""

from __future__ import annotations

import hashlib
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator
from scipy import stats

CONFIDENCE = 0.95
Z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
SCORE_BOUNDS = (1.0, 5.0)  # the judges' scale
RATE_BOUNDS, KAPPA_BOUNDS = (0.0, 1.0), (-1.0, 1.0)


class Figure(BaseModel):
    """One figure of one instrument at one stage."""

    statistic: Literal["mean", "rate", "kappa"]
    value: float | None = Field(description="The mean, rate or kappa; None when undefined.")
    n: int = Field(description="Valid measurements the value is computed from.")
    ci_low: float | None = Field(description="95% interval (Student-t for means, clipped to the "
                                 "scale; Jeffreys for rates; asymptotic for kappa); None when undefined.")
    ci_high: float | None
    invalid: int = Field(description="Measurements recorded as invalid (or not applicable, e.g. a shutdown "
                         "episode whose shutdown was never announced): not in n.")
    meaning: str
    bounds: tuple[float, float] | None = Field(None, description=(
        "The ends of the figure's scale (0-1 for rates, 1-5 for judge scores, 0-1 for entropy); None for an "
        "unbounded one such as utilities. Readers draw each figure on its own scale."))
    chance: float | None = Field(None, description=(
        "The value a uniform-random policy gets, where it is exact (a menu or a constrained choice); None where "
        "chance is undefined (a free shell, an open answer) or the figure has none."))

    @model_validator(mode="before")
    @classmethod
    def _scale_of_rates(cls, data):
        """Rates and kappas have one scale each; a mean's scale is given by whoever computes it
        (summaries written before this field read None for means: drawn on their data's range)."""
        if isinstance(data, dict) and data.get("bounds") is None and data.get("statistic") in ("rate", "kappa"):
            data = {**data, "bounds": RATE_BOUNDS if data["statistic"] == "rate" else KAPPA_BOUNDS}
        return data


def scale(bounds: tuple[float, float]) -> tuple[float, float] | None:
    """A mean's scale as a figure records it: None where it is unbounded."""
    return None if any(math.isinf(b) for b in bounds) else bounds


def percentile_interval(draws) -> tuple[float, float]:
    """The central 95% of bootstrap draws: the percentile interval every resampling figure uses."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(values: list[float], bounds: tuple[float, float] = SCORE_BOUNDS
                  ) -> tuple[float | None, float | None, float | None]:
    """Mean and two-sided Student-t interval, clipped to the scale's bounds (the mean cannot
    leave them); undefined below two values or when all values are equal."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    if _sd(values) == 0:
        return mean, None, None  # identical scores: no estimate of their spread, so no interval
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * _sd(values) / math.sqrt(n)
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def rate_interval(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    """Rate and Jeffreys interval (Beta(x+1/2, n-x+1/2) quantiles; 0 and 1 at the edges)."""
    if n == 0:
        return None, None, None
    tail = (1 - CONFIDENCE) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes + 0.5, n - successes + 0.5))
    high = 1.0 if successes == n else float(stats.beta.ppf(1 - tail, successes + 0.5, n - successes + 0.5))
    return successes / n, low, high


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _wilson(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def difference(kind: str, later: list, base: list) -> tuple[float | None, float | None, float | None]:
    """later - base with a 95% interval: Newcombe's hybrid score interval for rates, Welch's
    t interval for means; the mean interval is undefined when a side has fewer than two values
    or no spread."""
    if not later or not base:
        return None, None, None
    if kind == "rate":
        x1, n1, x0, n0 = sum(later), len(later), sum(base), len(base)
        (l1, u1), (l0, u0) = _wilson(x1, n1), _wilson(x0, n0)
        d = x1 / n1 - x0 / n0
        return (d, d - math.sqrt((x1 / n1 - l1) ** 2 + (u0 - x0 / n0) ** 2),
                d + math.sqrt((u1 - x1 / n1) ** 2 + (x0 / n0 - l0) ** 2))
    d = sum(later) / len(later) - sum(base) / len(base)
    if len(later) < 2 or len(base) < 2:
        return d, None, None
    v1, v0 = _sd(later) ** 2 / len(later), _sd(base) ** 2 / len(base)
    if v1 == 0 or v0 == 0:
        return d, None, None  # a side without spread gives no estimate of its uncertainty
    df = (v1 + v0) ** 2 / (v1**2 / (len(later) - 1) + v0**2 / (len(base) - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * math.sqrt(v1 + v0)
    return d, d - half, d + half


def kappa_figure(pairs: list[tuple[bool, bool]], invalid: int, meaning: str) -> Figure:
    """Cohen's kappa of two binary ratings, with the asymptotic 95% interval (clipped to
    [-1, 1]); undefined when either rating never varies (kappa would be 0 by construction);
    no interval when agreement is total or nil (the asymptotic error is then 0)."""
    n = len(pairs)
    value = low = high = None
    p_a, p_b = (sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n) if n else (0, 0)
    if 0 < p_a < 1 and 0 < p_b < 1:
        observed = sum(a == b for a, b in pairs) / n
        chance = p_a * p_b + (1 - p_a) * (1 - p_b)
        value = (observed - chance) / (1 - chance)
        if 0 < observed < 1:
            half = Z * math.sqrt(observed * (1 - observed) / n) / (1 - chance)
            low, high = max(-1.0, value - half), min(1.0, value + half)
    return Figure(statistic="kappa", value=value, n=n, ci_low=low, ci_high=high, invalid=invalid,
                  meaning=meaning)


def split_key(measurement_id: str) -> int:
    """A fixed pseudo-random key per measurement. The halves it makes are independent of the
    sample index, which the counterbalanced choice order follows."""
    return int.from_bytes(hashlib.blake2b(measurement_id.encode(), digest_size=4).digest(), "little")
