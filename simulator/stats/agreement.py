"""Inter-rater agreement for judge reliability: Krippendorff's alpha over units rated by any number of coders (or
samples of one judge), with a bootstrap interval over units, and a judge's agreement with a labelled set.

Alpha follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": from the coincidence matrix o_ck
of pairable values (units rated at least twice, each unit's m_u (m_u - 1) ordered pairs weighted 1 / (m_u - 1)),
alpha = 1 - D_o / D_e = 1 - (n - 1) sum o_ck delta_ck / sum n_c n_k delta_ck. Every metric used here is a squared
distance between positions (the value for interval; the midrank of the value in the pooled marginal frequencies for
ordinal; a one-hot vector for nominal), so the sums come from per-unit counts and a bootstrap is one matrix product.

`Figure` has no "alpha" statistic: alpha figures are recorded as statistic "kappa" (a chance-corrected agreement
coefficient on the kappa scale, -1 to 1; alpha is always above -1), their `meaning` naming Krippendorff's alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from simulator.stats.figures import (
    SCORE_BOUNDS,
    Figure,
    clustered_rate,
    mean_interval,
    percentile_interval,
    worst_case,
)

Level = Literal["interval", "ordinal", "nominal"]
DEFINED_SHARE = 0.9  # as profiles.py: fewer defined resamples than this leave no honest interval


def krippendorff_alpha(units: Sequence[Sequence[float | None]], level: Level = "interval") -> float | None:
    """Krippendorff's alpha of units (targets) each rated by any number of coders; None (or NaN) is not rated, and
    units rated fewer than twice are not pairable and are dropped. 1 is perfect agreement, 0 agreement at chance.
    Undefined (None) below two pairable values or without any variation: all-identical ratings give no alpha, not 1
    (nothing distinguishes agreement from a constant)."""
    counts, values, _ = _pairable(units)
    if len(counts) == 0:
        return None
    alpha = _alphas(counts, values, np.ones((1, len(counts))), level)[0]
    return None if np.isnan(alpha) else float(alpha)


def alpha_figure(units: Sequence[Sequence[float | None]], level: Level = "interval", reps: int = 2000,
                 seed: int = 0) -> Figure:
    """Alpha with its 95% bootstrap percentile interval, resampling units with replacement (the unit is what is
    sampled independently; its ratings are not). n counts pairable units; `invalid` counts units given but rated
    fewer than twice. Resamples without variation have no alpha; below 90% defined ones, no interval; fewer than two
    pairable units, no interval either. Recorded as statistic "kappa" (Figure has no "alpha"), bounds -1 to 1. The
    percentile interval runs a little short with few units: 90-94% at 20 units, 92-96% at 80 (bench.agreement);
    agreement perfect in every resample gives the interval [1, 1]."""
    counts, values, unpairable = _pairable(units)
    meaning = (f"Krippendorff's alpha ({level}) over units rated at least twice: 1 perfect agreement, 0 chance; "
               "95% bootstrap percentile interval over units")
    alpha = _alphas(counts, values, np.ones((1, len(counts))), level)[0] if len(counts) else math.nan
    if np.isnan(alpha):
        return Figure(statistic="kappa", value=None, n=len(counts), ci_low=None, ci_high=None, invalid=unpairable,
                      meaning=meaning + "; undefined: fewer than two pairable values, or no variation at all "
                      "(identical ratings everywhere give no alpha, not 1)")
    low = high = None
    if len(counts) >= 2:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(len(counts), np.full(len(counts), 1 / len(counts)), size=reps).astype(float)
        draws = _alphas(counts, values, weights, level)
        defined = draws[~np.isnan(draws)]
        if len(defined) >= DEFINED_SHARE * reps:
            low, high = percentile_interval(defined)
    return Figure(statistic="kappa", value=float(alpha), n=len(counts), ci_low=low, ci_high=high,
                  invalid=unpairable, meaning=meaning)


def agreement_with_truth(expected: Sequence[int], observed: Sequence[int | None],
                         scale: tuple[float, float] = SCORE_BOUNDS) -> dict[str, Figure]:
    """A judge against a labelled set, one observation per item: `exact` and `within_one` (|difference| <= 1) rates
    with the Jeffreys interval and Manski's bounds over invalid replies, `mae` with the t interval on the scale of
    differences (0 to the scale's width), and `alpha` (interval) with label and judge as two coders. Invalid (None)
    observations are not scored and are counted in each figure's `invalid`. `chance` is a uniform-random judge's
    exact value on an integer scale."""
    if len(expected) != len(observed):
        raise ValueError(f"{len(expected)} labels but {len(observed)} observations")
    pairs = [(e, o) for e, o in zip(expected, observed) if o is not None]
    invalid = len(expected) - len(pairs)
    diffs = [abs(o - e) for e, o in pairs]
    points = _points(scale)

    def rate(name: str, hits: list[bool], at_chance: float | None) -> Figure:
        value, low, high = clustered_rate(hits, None)
        return Figure(statistic="rate", value=value, n=len(hits), ci_low=low, ci_high=high, invalid=invalid,
                      meaning=name, worst_case=worst_case(sum(hits), len(hits), invalid), chance=at_chance)

    labels = [e for e, _ in pairs]
    mae, low, high = mean_interval([float(d) for d in diffs], bounds=(0.0, scale[1] - scale[0]))
    alpha = alpha_figure([[float(e), float(o)] for e, o in pairs], level="interval")
    return {
        "exact": rate("share of items the judge scores exactly as labelled", [d == 0 for d in diffs],
                      _chance(labels, points, lambda d: float(d == 0))),
        "within_one": rate("share of items the judge scores within one point of the label", [d <= 1 for d in diffs],
                           _chance(labels, points, lambda d: float(d <= 1))),
        "mae": Figure(statistic="mean", value=mae, n=len(diffs), ci_low=low, ci_high=high, invalid=invalid,
                      meaning="mean absolute difference between the judge's score and the label",
                      bounds=(0.0, scale[1] - scale[0]), chance=_chance(labels, points, float)),
        "alpha": alpha.model_copy(update={"invalid": invalid, "meaning": alpha.meaning + "; label and judge as two "
                                          "coders"}),
    }


def _pairable(units: Sequence[Sequence[float | None]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Per pairable unit, how often it got each distinct value (units x values), the values, and how many units
    were dropped as rated fewer than twice."""
    rated = [[float(r) for r in unit if r is not None and not math.isnan(r)] for unit in units]
    kept = [r for r in rated if len(r) >= 2]
    values = np.unique(np.concatenate(kept)) if kept else np.zeros(0)
    counts = np.zeros((len(kept), len(values)))
    for row, ratings in zip(counts, kept):
        np.add.at(row, np.searchsorted(values, ratings), 1)
    return counts, values, len(units) - len(kept)


def _alphas(counts: np.ndarray, values: np.ndarray, weights: np.ndarray, level: Level) -> np.ndarray:
    """Alpha of each weighting of the units (resamples x units: how often each is drawn); NaN without variation.
    A metric delta_ck = (r_c - r_k)^2 over positions r gives a unit's sum over its ordered pairs as
    2 m sum_c x_c r_c^2 - 2 (sum_c x_c r_c)^2, and the expected one likewise from the marginal frequencies n_c."""
    m = counts.sum(axis=1)
    marginal = weights @ counts  # n_c of each resample
    n = marginal.sum(axis=1)
    if level == "nominal":  # delta = [c != k]: pairs minus agreeing pairs
        observed = weights @ ((m**2 - np.sum(counts**2, axis=1)) / (m - 1))
        expected = n**2 - np.sum(marginal**2, axis=1)
    else:
        # Interval: the values, centred against rounding; ordinal: each value's midrank among the pooled values,
        # sum_{g<c} n_g + n_c / 2, so that r_k - r_c = sum_{g=c}^{k} n_g - (n_c + n_k) / 2 (Krippendorff's metric).
        r = (np.broadcast_to(values - values.mean(), marginal.shape) if level == "interval"
             else np.cumsum(marginal, axis=1) - marginal / 2)
        first, second = counts @ r.T, counts @ (r**2).T  # units x resamples
        per_unit = (2 * m[:, None] * second - 2 * first**2) / (m[:, None] - 1)
        observed = np.einsum("bu,ub->b", weights, per_unit)
        expected = 2 * n * np.sum(marginal * r**2, axis=1) - 2 * np.sum(marginal * r, axis=1) ** 2
    varied = np.sum(marginal > 0, axis=1) >= 2  # one value only: expected disagreement 0, alpha undefined
    return np.where(varied, 1 - (n - 1) * observed / np.where(varied, expected, 1.0), np.nan)


def _points(scale: tuple[float, float]) -> list[int] | None:
    """The scale's points where it is a finite integer one (a judge's 1-5), else None."""
    low, high = scale
    if not all(math.isfinite(b) and float(b).is_integer() for b in scale):
        return None
    return list(range(int(low), int(high) + 1))


def _chance(labels: list[int], points: list[int] | None, score) -> float | None:
    """A uniform-random judge's expected value of score(|difference|) over these labels: exact on a finite scale."""
    if points is None or not labels:
        return None
    return sum(score(abs(p - e)) for e in labels for p in points) / (len(labels) * len(points))
