"""Inter-rater agreement: Krippendorff's alpha against his published example and the textbook formula, its
undefined and limiting cases, its bootstrap interval's coverage, and a judge's agreement with a labelled set."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulator.stats.agreement import agreement_with_truth, alpha_figure, krippendorff_alpha

LEVELS = ("interval", "ordinal", "nominal")
N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": observers A-D (rows) x units 1-12 (columns).
OBSERVERS = [[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
             [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
             [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
             [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]]
WORKED_EXAMPLE = [list(unit) for unit in zip(*OBSERVERS)]


def textbook_alpha(units: list[list[float | None]], level: str) -> float:
    """Krippendorff's (2011) steps literally: coincidences o_ck of every ordered pair within a unit, weighted
    1 / (m_u - 1); marginals n_c; the metric per level; alpha = 1 - (n - 1) sum o delta / sum n_c n_k delta."""
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [unit for unit in pairable if len(unit) >= 2]
    values = sorted({v for unit in pairable for v in unit})
    o = {(c, k): 0.0 for c in values for k in values}
    for unit in pairable:
        for i, j in itertools.permutations(range(len(unit)), 2):
            o[unit[i], unit[j]] += 1 / (len(unit) - 1)
    n_c = {c: sum(o[c, k] for k in values) for c in values}
    n = sum(n_c.values())

    def delta(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        low, high = sorted((c, k))
        return (sum(n_c[g] for g in values if low <= g <= high) - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(o[c, k] * delta(c, k) for c in values for k in values)
    expected = sum(n_c[c] * n_c[k] * delta(c, k) for c in values for k in values)
    return 1 - (n - 1) * observed / expected


def latent_ratings(rng: np.random.Generator, units: int, samples: int) -> list[list[float | None]]:
    """A judge's 1-5 scores: each unit's latent quality (sd 1) plus rating noise (sd 0.8), rounded and clipped."""
    latent = rng.normal(0, 1, (units, 1)) + rng.normal(0, 0.8, (units, samples))
    return np.clip(np.round(3 + latent), 1, 5).tolist()


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("interval", 0.849), ("ordinal", 0.815)])
def test_krippendorffs_worked_example_gives_his_published_alphas(level, published):
    assert krippendorff_alpha(WORKED_EXAMPLE, level) == pytest.approx(published, abs=5e-4)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_the_textbook_coincidence_matrix_computation_on_ragged_data(level):
    rng = np.random.default_rng(3)
    units = [[float(rng.integers(1, 6)) if rng.random() < 0.7 else None for _ in range(rng.integers(1, 6))]
             for _ in range(30)]
    assert krippendorff_alpha(units, level) == pytest.approx(textbook_alpha(units, level), abs=1e-12)


@pytest.mark.parametrize("level", LEVELS)
def test_perfect_agreement_with_variation_gives_one(level):
    units = [[v] * 3 for v in (1, 2, 3, 4, 5, 2)] + [[4, 4]]
    assert krippendorff_alpha(units, level) == pytest.approx(1.0)


@pytest.mark.parametrize("level", LEVELS)
def test_all_identical_ratings_give_no_alpha_rather_than_one(level):
    units = [[3, 3, 3], [3, 3], [3, None, 3]]
    assert krippendorff_alpha(units, level) is None
    figure = alpha_figure(units, level)
    assert figure.value is None and figure.ci_low is None and figure.ci_high is None
    assert figure.n == 3 and "no variation" in figure.meaning


def test_fewer_than_two_pairable_values_give_no_alpha():
    assert krippendorff_alpha([]) is None
    assert krippendorff_alpha([[1], [5, None], [None]]) is None


def test_units_rated_fewer_than_twice_are_dropped_and_counted_invalid():
    with_singles = WORKED_EXAMPLE + [[1, N, N], [N, N], []]
    assert krippendorff_alpha(with_singles) == krippendorff_alpha(WORKED_EXAMPLE[:11])
    figure = alpha_figure(with_singles, reps=200)
    assert figure.n == 11 and figure.invalid == 4  # unit 12 of the example, and the three added


def test_nan_counts_as_not_rated():
    assert krippendorff_alpha([[1, 2, float("nan")], [4, 4], [5, float("nan"), 5]]) == krippendorff_alpha(
        [[1, 2], [4, 4], [5, 5]])


@pytest.mark.parametrize("level", LEVELS)
def test_independent_random_ratings_give_alpha_near_zero(level):
    rng = np.random.default_rng(7)
    alpha = krippendorff_alpha(rng.integers(1, 6, (400, 3)).astype(float).tolist(), level)
    assert alpha is not None and abs(alpha) < 0.1


def test_ordinal_alpha_sees_only_the_order_of_values_and_nominal_only_their_identity():
    rng = np.random.default_rng(11)
    units = latent_ratings(rng, 50, 3)
    stretched = [[{1: 1, 2: 2, 3: 10, 4: 11, 5: 100}[int(v)] for v in unit] for unit in units]
    shuffled = [[{1: 4, 2: 1, 3: 5, 4: 2, 5: 3}[int(v)] for v in unit] for unit in units]
    assert krippendorff_alpha(stretched, "ordinal") == pytest.approx(krippendorff_alpha(units, "ordinal"))
    assert krippendorff_alpha(stretched, "interval") != pytest.approx(krippendorff_alpha(units, "interval"))
    assert krippendorff_alpha(shuffled, "nominal") == pytest.approx(krippendorff_alpha(units, "nominal"))


def test_systematic_disagreement_gives_a_negative_alpha_above_minus_one():
    alpha = krippendorff_alpha([[1, 5], [5, 1]] * 10)
    assert alpha is not None and -1 < alpha < -0.9


def test_alpha_figure_brackets_the_point_on_the_kappa_scale():
    figure = alpha_figure(WORKED_EXAMPLE, "ordinal")
    assert figure.value == krippendorff_alpha(WORKED_EXAMPLE, "ordinal")
    assert figure.ci_low is not None and figure.ci_high is not None
    assert -1 <= figure.ci_low < figure.value <= figure.ci_high <= 1
    assert figure.statistic == "kappa" and figure.bounds == (-1.0, 1.0) and "Krippendorff" in figure.meaning
    assert alpha_figure(WORKED_EXAMPLE, "ordinal") == figure  # the seed fixes the resamples


def test_bootstrap_interval_covers_the_population_alpha_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    truth = krippendorff_alpha(latent_ratings(rng, 100_000, 3))
    assert truth is not None
    covered = 0
    for sim in range(200):
        figure = alpha_figure(latent_ratings(rng, 40, 3), reps=1000, seed=sim)
        assert figure.ci_low is not None and figure.ci_high is not None
        covered += figure.ci_low <= truth <= figure.ci_high
    assert 0.88 <= covered / 200 <= 0.99


def test_a_perfect_judge_agrees_exactly_with_no_error_and_its_invalid_replies_are_counted():
    labels = [1, 2, 3, 4, 5, 3, 2, 4]
    figures = agreement_with_truth(labels, [1, 2, 3, 4, 5, 3, None, None])
    assert figures["exact"].value == 1.0 and figures["within_one"].value == 1.0
    assert figures["mae"].value == 0.0 and figures["alpha"].value == pytest.approx(1.0)
    assert all(f.n == 6 and f.invalid == 2 for f in figures.values())
    assert figures["exact"].worst_case == (0.75, 1.0)  # had both invalid replies been wrong, or right


def test_a_judge_one_point_high_is_never_exact_but_always_within_one():
    figures = agreement_with_truth([1, 2, 3, 4], [2, 3, 4, 5])
    assert figures["exact"].value == 0.0 and figures["within_one"].value == 1.0
    assert figures["mae"].value == 1.0 and figures["mae"].ci_low is not None
    assert figures["exact"].chance == pytest.approx(0.2)  # a uniform-random judge on 1-5


def test_labels_and_observations_must_pair_up():
    with pytest.raises(ValueError):
        agreement_with_truth([1, 2, 3], [1, 2])
