"""Thurstonian utilities: recovery of known utilities, coherence as held-out accuracy, and their invariances."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from simulator.stats.thurstone import PairTally, cosine_distance, fit, held_out_accuracy, probability

OUTCOMES = 20


def simulated(true_mu: np.ndarray, true_sigma: np.ndarray, rng: np.random.Generator, n: int = 10) -> list[PairTally]:
    """Every pair compared n times by a chooser that follows the Thurstonian model exactly."""
    pairs = [(i, j) for i in range(len(true_mu)) for j in range(i + 1, len(true_mu))]
    p = [stats.norm.cdf((true_mu[i] - true_mu[j]) / math.hypot(true_sigma[i], true_sigma[j])) for i, j in pairs]
    return [PairTally(i, j, int(rng.binomial(n, q)), n) for (i, j), q in zip(pairs, p)]


def coin_flips(rng: np.random.Generator, n: int = 10) -> list[PairTally]:
    return [PairTally(i, j, int(rng.binomial(n, 0.5)), n) for i in range(OUTCOMES) for j in range(i + 1, OUTCOMES)]


def coherent_case() -> tuple[np.ndarray, list[PairTally]]:
    rng = np.random.default_rng(0)
    true_mu, true_sigma = rng.normal(0, 1, OUTCOMES), rng.uniform(0.5, 1.5, OUTCOMES)
    return true_mu, simulated(true_mu, true_sigma, rng)


def test_fit_recovers_the_ranking_of_known_utilities_and_is_normalised_by_the_sample_sd():
    true_mu, comparisons = coherent_case()
    u = fit(OUTCOMES, comparisons)
    assert stats.spearmanr(u.mu, true_mu).statistic >= 0.95
    assert abs(np.mean(u.mu)) < 1e-9 and abs(np.std(u.mu, ddof=1) - 1) < 1e-9
    assert all(s > 0 for s in u.sigma)
    assert u.log_likelihood < 0


def test_coherent_choices_predict_held_out_majorities():
    _, comparisons = coherent_case()
    accuracy, scored = held_out_accuracy(OUTCOMES, comparisons)
    assert scored > 150  # all 190 pairs are held out once; only exact 5-5 ties are skipped
    assert accuracy >= 0.75


def test_random_choices_score_near_chance_and_below_coherent_ones():
    random_accuracy, scored = held_out_accuracy(OUTCOMES, coin_flips(np.random.default_rng(1)))
    coherent_accuracy, _ = held_out_accuracy(OUTCOMES, coherent_case()[1])
    assert scored > 100
    assert 0.35 < random_accuracy < 0.65
    assert random_accuracy < coherent_accuracy


def test_held_out_accuracy_is_none_when_no_pair_has_a_majority():
    ties = [PairTally(i, i + 1, 5, 10) for i in range(OUTCOMES - 1)]
    assert held_out_accuracy(OUTCOMES, ties) == (None, 0)


def test_fit_does_not_depend_on_which_side_is_listed_first():
    _, comparisons = coherent_case()
    flipped = [PairTally(c.b, c.a, c.n - c.a_wins, c.n) if k % 2 else c for k, c in enumerate(comparisons)]
    assert np.allclose(fit(OUTCOMES, comparisons).mu, fit(OUTCOMES, flipped).mu, atol=1e-4)


def test_an_unbeaten_outcome_gets_the_highest_finite_utility_and_an_unwinning_one_the_lowest():
    _, comparisons = coherent_case()
    forced = [PairTally(c.a, c.b, c.n if c.a == 0 else 0 if c.b == 0 else c.a_wins, c.n) for c in comparisons]
    forced = [PairTally(c.a, c.b, c.n if c.b == OUTCOMES - 1 else c.a_wins, c.n) for c in forced]
    u = fit(OUTCOMES, forced)
    assert all(math.isfinite(m) for m in u.mu + u.sigma)
    assert u.mu[0] == max(u.mu) and u.mu[OUTCOMES - 1] == min(u.mu)
    assert probability(u, 0, 1) > 0.9


def test_outcomes_never_compared_stay_at_zero():
    u = fit(4, [PairTally(0, 1, 9, 10)])
    assert u.mu[2] == u.mu[3] == 0.0
    assert u.mu[0] > 0 > u.mu[1]


def test_probability_is_complementary_and_one_half_for_an_outcome_against_itself():
    u = fit(OUTCOMES, coherent_case()[1])
    assert math.isclose(probability(u, 3, 7) + probability(u, 7, 3), 1.0)
    assert probability(u, 5, 5) == 0.5


def test_cosine_distance_is_zero_to_itself_two_to_its_negation_and_none_for_zero_vectors():
    v = [0.5, -1.0, 2.0]
    assert math.isclose(cosine_distance(v, v), 0.0, abs_tol=1e-12)
    assert math.isclose(cosine_distance(v, [-x for x in v]), 2.0)
    assert cosine_distance([0.0, 0.0, 0.0], v) is None
    assert cosine_distance(v, np.zeros(3)) is None
