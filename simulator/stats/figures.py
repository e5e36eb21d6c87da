"""A figure: a value with its sample size, its 95% interval and its invalid count; and the
intervals the summaries use (one place, so every instrument is held to the same statistics)."""

from __future__ import annotations

import math
import re
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
    worst_case: tuple[float, float] | None = Field(None, description=(
        "For a rate whose invalid measurements are censored (an episode cut short by unusable replies): its value "
        "had every one been False, and had every one been True (Manski's bounds over all measurements)."))
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


def worst_case(successes: int, n: int, invalid: int) -> tuple[float, float] | None:
    """Manski's bounds on a rate over all n + invalid measurements (None without invalid ones)."""
    total = n + invalid
    return (successes / total, (successes + invalid) / total) if invalid else None


def scale(bounds: tuple[float, float]) -> tuple[float, float] | None:
    """A mean's scale as a figure records it: None where it is unbounded."""
    return None if any(math.isinf(b) for b in bounds) else bounds


def percentile_interval(draws) -> tuple[float, float]:
    """The central 95% of bootstrap draws: the percentile interval every resampling figure uses."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(values: list[float], bounds: tuple[float, float] = SCORE_BOUNDS,
                  clusters: list[str] | None = None, confidence: float = CONFIDENCE
                  ) -> tuple[float | None, float | None, float | None]:
    """Mean and two-sided Student-t interval, clipped to the scale's bounds (the mean cannot
    leave them). Values that share clusters (an item asked in several samples) get the
    cluster-robust variance (`design_effect`) on clusters - 1 df. Equal values still get an
    interval: their spread is bounded from the scale (`spread`). Undefined below two values, with
    one cluster of several values, or without spread on an unbounded scale."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = sum(values) / n
    variance = spread(values, bounds) if n >= 2 else None
    deff, df = design_effect(values, clusters)
    if variance is None or df == 0:
        return mean, None, None
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(variance * deff / n)
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def spread(values: list[float], bounds: tuple[float, float]) -> float | None:
    """The sample variance; for values without spread, a bound from the scale: the largest variance
    a variable on it can have at their mean (Bhatia-Davis, (high - mean)(mean - low)), with the
    mean's position on the scale shrunk as Jeffreys shrinks n of n, (n q + 1/2) / (n + 1), so that
    an edge reached n times is no proof it is always reached. None on an unbounded scale."""
    sd = _sd(values)
    if sd > 0:
        return sd**2
    low, high = bounds
    if math.isinf(low) or math.isinf(high):
        return None
    n = len(values)
    q = ((values[0] - low) / (high - low) * n + 0.5) / (n + 1)
    return (high - low) ** 2 * q * (1 - q)


def design_effect(values: list[float], clusters: list[str] | None) -> tuple[float, int]:
    """How much sharing clusters inflates the variance of the mean, and the df its variance rests on.
    Values in clusters of their own (or without clusters): 1 and n - 1. Otherwise the sandwich
    variance over the C clusters with the small-sample factor C/(C-1), over the independent
    variance, at least 1 (sharing is never taken to help), on C - 1 df; one cluster of several
    values: (inf, 0), nothing to estimate its variance from."""
    n = len(values)
    if clusters is None or len(set(clusters)) == n:
        return 1.0, n - 1
    groups = len(set(clusters))
    if groups == 1:
        return math.inf, 0
    y = np.asarray(values, float)
    _, group = np.unique(clusters, return_inverse=True)
    residuals = np.bincount(group, weights=y - y.mean())
    robust = groups / (groups - 1) * float(np.sum(residuals**2)) / n**2
    independent = float(np.var(y, ddof=1)) / n
    return (max(1.0, robust / independent) if independent > 0 else 1.0), groups - 1


def effective_size(values: list[float], clusters: list[str] | None, confidence: float = CONFIDENCE
                   ) -> float | None:
    """Korn and Graubard's (1998) effective sample size: n / design effect, times
    (t_{n-1} / t_{C-1})^2 for the few clusters the variance rests on; None for one cluster."""
    n = len(values)
    deff, df = design_effect(values, clusters)
    if n > 1 and df == 0:
        return None
    if df >= n - 1:
        return n / deff
    tail = 0.5 + confidence / 2
    return n / deff * (stats.t.ppf(tail, n - 1) / stats.t.ppf(tail, df)) ** 2


def rate_interval(successes: float, n: float, confidence: float = CONFIDENCE
                  ) -> tuple[float | None, float | None, float | None]:
    """Rate and Jeffreys interval (Beta(x+1/2, n-x+1/2) quantiles; 0 and 1 at the edges). Counts
    may be effective (non-integer) ones, as `clustered_rate` gives."""
    if n == 0:
        return None, None, None
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes + 0.5, n - successes + 0.5))
    high = 1.0 if successes == n else float(stats.beta.ppf(1 - tail, successes + 0.5, n - successes + 0.5))
    return successes / n, low, high


def clustered_rate(outcomes: list[bool], clusters: list[str] | None, confidence: float = CONFIDENCE
                   ) -> tuple[float | None, float | None, float | None]:
    """A rate whose outcomes may share clusters: the Jeffreys interval (Korn and Graubard use
    Clopper-Pearson) on Korn and Graubard's effective sample size (`effective_size`), so an item
    answered alike in every sample counts for less than independent answers."""
    x, n = sum(outcomes), len(outcomes)
    if n == 0:
        return None, None, None
    size = effective_size([float(o) for o in outcomes], clusters, confidence)
    if size is None:
        return x / n, None, None
    _, low, high = rate_interval(x / n * size, size, confidence)
    return x / n, low, high


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def difference(kind: str, later: list, base: list, later_clusters: list[str] | None = None,
               base_clusters: list[str] | None = None, confidence: float = CONFIDENCE,
               bounds: tuple[float, float] = SCORE_BOUNDS) -> tuple[float | None, float | None, float | None]:
    """later - base with a two-sided interval: Newcombe's hybrid score interval (method 10) for
    rates on each side's effective size (`effective_size`), Welch's t interval for means with each
    side's cluster-robust variance and df. The two sides are treated as independent: they share
    items, which makes the interval if anything too wide. A mean side without spread borrows the
    other side's variance, or when neither has any, the scale's bound (`spread`). Undefined with a
    side of one cluster."""
    if not later or not base:
        return None, None, None
    d = sum(later) / len(later) - sum(base) / len(base)
    sides = ((later, later_clusters), (base, base_clusters))
    if kind == "rate":
        sizes = [effective_size([float(v) for v in side], c, confidence) for side, c in sides]
        if sizes[0] is None or sizes[1] is None:
            return d, None, None
        return _newcombe(sum(later) / len(later), sizes[0], sum(base) / len(base), sizes[1], confidence)
    spreads = _spreads(later, base, bounds) if len(later) > 1 and len(base) > 1 else None
    effects = [design_effect([float(v) for v in side], c) for side, c in sides]
    if spreads is None or any(df == 0 for _, df in effects):
        return d, None, None
    (deff1, df1), (deff0, df0) = effects
    v1, v0 = spreads[0] * deff1 / len(later), spreads[1] * deff0 / len(base)
    df = (v1 + v0) ** 2 / (v1**2 / df1 + v0**2 / df0)
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(v1 + v0)
    return d, d - half, d + half


def _spreads(later: list, base: list, bounds: tuple[float, float]) -> list[float] | None:
    """Each side's variance: its own; without spread, the other side's; neither has any: the scale's bound."""
    own = [_sd(side) ** 2 for side in (later, base)]
    if all(own):
        return own
    if any(own):
        return [max(own)] * 2
    bounded = [spread(side, bounds) for side in (later, base)]
    return None if bounded[0] is None or bounded[1] is None else [bounded[0], bounded[1]]


def _newcombe(p1: float, m1: float, p0: float, m0: float, confidence: float) -> tuple[float, float, float]:
    """Newcombe's method 10 for p1 - p0 on (effective) sizes m1, m0: Wilson limits of each side combined."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    (l1, u1), (l0, u0) = _wilson(p1 * m1, m1, z), _wilson(p0 * m0, m0, z)
    d = p1 - p0
    return d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def kappa_figure(pairs: list[tuple[bool, bool]], invalid: int, meaning: str) -> Figure:
    """Cohen's kappa of two binary ratings, with the asymptotic 95% interval of Cohen (1960),
    SE = sqrt(p_o (1 - p_o) / n) / (1 - p_e), clipped to [-1, 1] (it covers 93-95% in
    simulation, so the later Fleiss-Cohen-Everitt variance is not needed here); undefined when
    either rating never varies (kappa would be 0 by construction); no interval when agreement is
    total or nil (the asymptotic error is then 0)."""
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


def cluster_of(measurement_id: str) -> str:
    """What a measurement shares with others: the item it answers, the id without its stage prefix
    (s0-) and its sample suffix (-n1), so the item's samples and stages share it; for a value
    read from one answer (answer-id:honesty), that answer, as one answer's values go together."""
    answer, _, value = measurement_id.partition(":")
    answer = STAGE.sub("", answer)
    return answer if value else SAMPLE.sub("", answer)


STAGE, SAMPLE = re.compile(r"^s\d+-"), re.compile(r"-n\d+$")
