"""`stats.contrasts`: contrasts of group means with Welch-Satterthwaite t intervals, pooled means
with cluster-robust t intervals, and the Holm and Benjamini-Hochberg adjustments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulator.stats.contrasts import (
    benjamini_hochberg,
    cluster_mean,
    cluster_terms,
    contrast,
    contrast_terms,
    holm,
    t_bounds,
)

P_VALUES = [0.01, 0.04, 0.03, 0.005]


def test_a_difference_of_two_groups_is_welchs_t_test():
    a, b = [0.1, 0.3, 0.2], [0.5, 0.9, 0.6, 0.65]
    result, welch = contrast([a, b], [1, -1]), stats.ttest_ind(a, b, equal_var=False)
    assert result.estimate == pytest.approx(np.mean(a) - np.mean(b))
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(welch.confidence_interval()))
    assert (result.p_value, result.df) == pytest.approx((welch.pvalue, welch.df))


def test_a_four_group_contrast_follows_the_welch_satterthwaite_formula():
    groups, weights = [[1.0, 2.0, 4.0], [0.0, 0.5, 0.0], [3.0, 3.5, 5.0, 2.0], [1.0, 1.1]], [0.5, 0.5, -0.5, -0.5]
    parts = [w**2 * np.var(g, ddof=1) / len(g) for g, w in zip(groups, weights)]
    df = sum(parts) ** 2 / sum(v**2 / (len(g) - 1) for v, g in zip(parts, groups))
    estimate = sum(w * np.mean(g) for g, w in zip(groups, weights))
    half = stats.t.ppf(0.975, df) * np.sqrt(sum(parts))
    result = contrast(groups, weights)
    assert (result.estimate, result.df, result.ci_low, result.ci_high) == pytest.approx(
        (estimate, df, estimate - half, estimate + half))


def test_a_group_of_one_unit_leaves_no_interval():
    result = contrast([[0.4], [0.1, 0.2]], [1, -1])
    assert result.estimate == pytest.approx(0.25) and (result.ci_low, result.p_value, result.df) == (None,) * 3


def test_groups_without_spread_leave_no_interval_even_where_float_means_miss_by_an_ulp():
    result = contrast([[0.1, 0.1, 0.1], [0.7, 0.7]], [1, -1])  # mean([0.1] * 3) is not exactly 0.1
    assert result.estimate == pytest.approx(-0.6) and (result.ci_low, result.ci_high, result.p_value) == (None,) * 3


def test_a_pooled_mean_is_the_ratio_of_sums_with_a_cluster_robust_t_interval_on_r_minus_1_df():
    clusters = [np.array([1.0, 0, 0, 1]), np.array([1.0, 1, 1]), np.array([0.0, 0, 1, 0, 0])]
    sums, counts = np.array([2.0, 3, 1]), np.array([4.0, 3, 5])
    mean = 6 / 12
    half = stats.t.ppf(0.975, 2) * np.sqrt(3 / 2 * ((sums - mean * counts) ** 2).sum() / 12**2)
    result = cluster_mean(clusters)
    assert (result.estimate, result.ci_low, result.ci_high, result.df) == pytest.approx(
        (mean, mean - half, mean + half, 2))


def test_a_pooled_interval_is_clipped_to_the_scale_given():
    result = cluster_mean([np.array([0.0, 0, 0, 1]), np.array([1.0, 1, 1, 1])], bounds=(0, 1))
    assert (result.ci_low, result.ci_high) == (0.0, 1.0)


def test_clusters_with_one_mean_leave_no_interval():
    assert cluster_mean([np.array([0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])]).ci_low is None


def test_holm_multiplies_the_ith_smallest_of_m_by_m_minus_i_plus_1_and_keeps_the_order():
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06.
    assert holm(P_VALUES) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_never_exceeds_one():
    assert holm([0.5, 0.6]) == [1.0, 1.0]


def test_benjamini_hochberg_matches_scipy():
    assert benjamini_hochberg(P_VALUES) == pytest.approx(stats.false_discovery_control(P_VALUES))
    assert benjamini_hochberg(P_VALUES) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_the_factorial_interval_covers_the_true_contrast_95_percent_of_the_time_with_3_runs_per_cell():
    # 2000 2x2 designs, 3 runs per cell, run-level drifts normal with a different SD in each cell.
    rng = np.random.default_rng(20)
    means, sds, weights = np.array([0.0, 0.1, 0.3, 0.5]), np.array([0.05, 0.2, 0.1, 0.4]), [1, -1, -1, 1]
    groups = [rng.normal(m, s, size=(2000, 3)) for m, s in zip(means, sds)]
    low, high, _ = t_bounds(*contrast_terms(groups, weights))
    truth = float(np.dot(weights, means))
    assert 0.93 <= np.mean((low <= truth) & (truth <= high)) <= 0.97


def test_the_pooled_interval_covers_the_mean_95_percent_of_the_time_with_runs_that_differ():
    # 2000 groups of 4 runs x 30 answers; each run's rate drawn from Beta(8, 12), mean 0.4.
    rng = np.random.default_rng(21)
    rates = rng.beta(8, 12, size=(2000, 4))
    sums = rng.binomial(30, rates).astype(float)
    low, high, _ = t_bounds(*cluster_terms(sums, np.full_like(sums, 30)))
    assert 0.93 <= np.mean((low <= 0.4) & (0.4 <= high)) <= 0.97
