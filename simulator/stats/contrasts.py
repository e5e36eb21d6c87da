"""t intervals over independent units (runs) whose own answers are not independent of each other,
and the adjustment of p-values for testing several at once.

- A contrast of group means, L = sum_g w_g mean_g, with V = sum_g w_g^2 s_g^2 / n_g and the
  Welch-Satterthwaite df V^2 / sum_g (w_g^2 s_g^2 / n_g)^2 / (n_g - 1): each group keeps its own
  variance, and the t quantile on those df is what keeps the interval honest with 3-5 units a
  group, where a percentile bootstrap over units under-covers.
- A pooled mean over clusters (sum of all values / their count), with the cluster-robust (sandwich)
  variance over clusters times R / (R - 1) and a t quantile on R - 1 df: the clusters, not the
  values, are the independent draws.
- Holm's step-down and Benjamini-Hochberg's step-up adjustments.

No knowledge of runs: arrays in, numbers out. The `*_terms` functions take any leading axes
(simulations, say) and work over the last, so a coverage check is one call, not a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from simulator.stats.figures import CONFIDENCE

Terms = tuple[np.ndarray, np.ndarray, np.ndarray]  # estimate, its variance, its df
Bounds = tuple[np.ndarray, np.ndarray, np.ndarray]  # ci_low, ci_high, p-value


@dataclass(frozen=True)
class TInterval:
    """An estimate with its 95% t interval and two-sided p-value of 0; None where undefined."""

    estimate: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    df: float | None


def _variance(units: np.ndarray) -> np.ndarray:
    """Sample variance over the last axis; exactly 0 where the units are all equal (a float mean of
    equal values can miss them by an ulp, and a variance of 1e-33 would claim certainty); NaN
    below two units."""
    if units.shape[-1] < 2:
        return np.full(units.shape[:-1], np.nan)
    return np.where(np.ptp(units, axis=-1) == 0, 0.0, units.var(axis=-1, ddof=1))


def contrast_terms(groups: Sequence[np.ndarray], weights: Sequence[float]) -> Terms:
    """L, V and the Welch-Satterthwaite df of a contrast of group means; each group's units lie
    along its last axis (groups may differ in size there); V is NaN where a group has one unit."""
    w = np.asarray(weights, dtype=float)
    counts = np.array([g.shape[-1] for g in groups], dtype=float)
    means = np.stack([np.asarray(g, dtype=float).mean(axis=-1) for g in groups], axis=-1)
    parts = w**2 * np.stack([_variance(np.asarray(g, dtype=float)) for g in groups], axis=-1) / counts
    variance = parts.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # V == 0 leaves df undefined: no interval then
        df = variance**2 / (parts**2 / (counts - 1)).sum(axis=-1)
    return (w * means).sum(axis=-1), variance, df


def cluster_terms(sums: np.ndarray, counts: np.ndarray) -> Terms:
    """The pooled mean sum(sums) / sum(counts) over clusters (last axis), its cluster-robust
    variance R/(R-1) * sum_r (sum_r - mean * count_r)^2 / (sum counts)^2, and R - 1 df. The
    variance is exactly 0 where every cluster has the same mean (see `_variance`)."""
    r = sums.shape[-1]
    total = counts.sum(axis=-1)
    mean = sums.sum(axis=-1) / total
    residuals = sums - mean[..., None] * counts
    variance = r / (r - 1) * (residuals**2).sum(axis=-1) / total**2
    variance = np.where(np.ptp(sums / counts, axis=-1) == 0, 0.0, variance)
    return mean, variance, np.full(np.shape(mean), float(r - 1))


def t_bounds(estimate: np.ndarray, variance: np.ndarray, df: np.ndarray) -> Bounds:
    """The 95% t interval and two-sided p-value of 0; NaN where the variance is not positive
    (no spread: nothing to scale the t by) or undefined."""
    defined = np.isfinite(variance) & (variance > 0) & np.isfinite(df) & (df > 0)
    se = np.sqrt(np.where(defined, variance, 1.0))
    df = np.where(defined, df, 1.0)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    p = 2 * stats.t.sf(np.abs(estimate) / se, df)
    low, high, p = (np.where(defined, x, np.nan) for x in (estimate - half, estimate + half, p))
    return low, high, p


def _interval(terms: Terms, bounds: tuple[float, float] = (-np.inf, np.inf)) -> TInterval:
    estimate, variance, df = (float(x) for x in terms)
    low, high, p = (float(x) for x in t_bounds(*(np.asarray(x) for x in terms)))
    if np.isnan(p):
        return TInterval(estimate, None, None, None, None)
    return TInterval(estimate, max(float(bounds[0]), low), min(float(bounds[1]), high), p, df)


def contrast(groups: Sequence[Sequence[float] | np.ndarray], weights: Sequence[float]) -> TInterval:
    """A contrast of group means with its Welch-Satterthwaite t interval; no interval where a group
    has one unit or no group varies."""
    return _interval(contrast_terms([np.asarray(g, dtype=float) for g in groups], weights))


def cluster_mean(clusters: Sequence[np.ndarray], bounds: tuple[float, float] = (-np.inf, np.inf)) -> TInterval:
    """The pooled mean of clusters' values with its cluster-robust t interval on R - 1 df, clipped
    to the scale's bounds (the mean cannot leave them); no interval below two clusters or where
    every cluster has the same mean."""
    if len(clusters) < 2:
        mean = float(np.concatenate(clusters).mean()) if clusters else float("nan")
        return TInterval(mean, None, None, None, None)
    sums = np.array([float(np.sum(c)) for c in clusters])
    counts = np.array([float(len(c)) for c in clusters])
    return _interval(cluster_terms(sums, counts), bounds)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values times (m - i + 1), made
    non-decreasing and capped at 1. Controls the family-wise error rate under any dependence."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, scaled)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg's step-up adjustment: the i-th smallest of m p-values times m / i, made
    non-decreasing from the largest down and capped at 1. Controls the false discovery rate for
    independent or positively dependent tests."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = (p[order] * len(p) / np.arange(1, len(p) + 1))[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled)[::-1])
    return adjusted.tolist()
