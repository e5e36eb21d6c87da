"""Thurstonian utilities from pairwise forced choices, as in "Utility Engineering" (Mazeika et al. 2025).

Each outcome i has a utility U_i ~ N(mu_i, sigma_i^2); the model prefers i to j with probability
Phi((mu_i - mu_j) / sqrt(sigma_i^2 + sigma_j^2)). Fitting these to a model's choices gives a utility
scale whose held-out predictive accuracy measures how coherent the choices are (random choices ~0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, log_ndtr, ndtr

PRIOR_SD = 3.0  # N(0, 3^2) prior on each mu and log sigma: weak, but keeps unbeaten/never-winning outcomes finite
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class PairTally:
    """a_wins of n valid forced choices between outcomes a and b picked a (presentation orders pooled); scored
    by probability, a_wins is the sum of P(a) over the n answers (the expected count)."""

    a: int
    b: int
    a_wins: float
    n: int


@dataclass(frozen=True)
class Utilities:
    """Fitted means and standard deviations per outcome, and the binomial log-likelihood of the data."""

    mu: list[float]
    sigma: list[float]
    log_likelihood: float


def _arrays(comparisons: Sequence[PairTally]) -> tuple[np.ndarray, ...]:
    a, b, n = (np.array([getattr(c, f) for c in comparisons], dtype=int) for f in ("a", "b", "n"))
    return a, b, np.array([c.a_wins for c in comparisons], dtype=float), n.astype(float)


def _mills(z: np.ndarray) -> np.ndarray:
    """phi(z) / Phi(z), computed in log space so it stays finite far in the lower tail."""
    return np.exp(-0.5 * z**2 - _LOG_SQRT_2PI - log_ndtr(z))


def fit(n_outcomes: int, comparisons: Sequence[PairTally]) -> Utilities:
    """Maximum a posteriori (mu, sigma) under a weak Gaussian prior; deterministic L-BFGS-B from mu=0, sigma=1.

    The model only fixes utilities up to shift and a common scale of mu and sigma, so the result is
    normalised to mean 0 and (population) std 1 of mu over the outcomes that appear in some comparison,
    with sigma divided by the same factor. Outcomes never compared keep mu=0 and the prior's sigma (rescaled).
    """
    a, b, w, n = _arrays(comparisons)
    k = n_outcomes

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mu, var = theta[:k], np.exp(2 * theta[k:])
        s = np.sqrt(var[a] + var[b])
        z = (mu[a] - mu[b]) / s
        nll = -(w * log_ndtr(z) + (n - w) * log_ndtr(-z)).sum() + 0.5 * theta @ theta / PRIOR_SD**2
        d_z = (n - w) * _mills(-z) - w * _mills(z)  # d nll / d z
        d_mu = d_z / s
        d_log_var = -d_z * z / s**2  # times var of the side: d z / d log sigma_a = -z var_a / s^2
        grad = theta / PRIOR_SD**2
        grad[:k] += np.bincount(a, d_mu, k) - np.bincount(b, d_mu, k)
        grad[k:] += np.bincount(a, d_log_var * var[a], k) + np.bincount(b, d_log_var * var[b], k)
        return nll, grad

    theta = minimize(objective, np.zeros(2 * k), jac=True, method="L-BFGS-B").x
    mu, sigma = theta[:k], np.exp(theta[k:])
    seen = (np.bincount(a, n, k) + np.bincount(b, n, k)) > 0
    centre = mu[seen].mean() if seen.any() else 0.0
    # The sample SD (ddof=1), as the Utility Engineering reference normalises (population SD: 2.6% smaller at k=20).
    scale = (mu[seen].std(ddof=1) if seen.sum() > 1 else 0.0) or 1.0
    mu, sigma = np.where(seen, (mu - centre) / scale, 0.0), sigma / scale
    z = (mu[a] - mu[b]) / np.sqrt(sigma[a] ** 2 + sigma[b] ** 2)
    log_binom = gammaln(n + 1) - gammaln(w + 1) - gammaln(n - w + 1)
    log_likelihood = float((log_binom + w * log_ndtr(z) + (n - w) * log_ndtr(-z)).sum())
    return Utilities(mu=mu.tolist(), sigma=sigma.tolist(), log_likelihood=log_likelihood)


def probability(u: Utilities, a: int, b: int) -> float:
    """P(a preferred over b) under the fitted model."""
    return float(ndtr((u.mu[a] - u.mu[b]) / np.hypot(u.sigma[a], u.sigma[b])))


def held_out_accuracy(
    n_outcomes: int, comparisons: Sequence[PairTally], folds: int = 5, seed: int = 0
) -> tuple[float | None, int]:
    """Share of held-out pairs whose majority choice a model fitted on the other folds predicts: coherence.

    Pairs are shuffled with default_rng(seed) and split into `folds` folds. Only pairs with a strict
    majority are scored; a model indifferent between the two (P = 0.5) earns half credit. Returns
    (accuracy, pairs scored), with accuracy None when no pair could be scored.
    """
    order = np.random.default_rng(seed).permutation(len(comparisons))
    credit, scored = 0.0, 0
    for held in np.array_split(order, max(1, min(folds, len(comparisons)))):
        if len(held) == len(comparisons):  # one fold: nothing left to train on
            break
        held_set = set(held.tolist())
        u = fit(n_outcomes, [c for i, c in enumerate(comparisons) if i not in held_set])
        for c in (comparisons[i] for i in held):
            if 2 * c.a_wins == c.n:
                continue
            p = probability(u, c.a, c.b)
            credit += 0.5 if p == 0.5 else float((p > 0.5) == (2 * c.a_wins > c.n))
            scored += 1
    return (credit / scored if scored else None), scored


def cosine_distance(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """1 - cos(x, y): 0 for utilities ranked alike, 2 for opposite ones; None when either vector is zero."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    norms = np.linalg.norm(x) * np.linalg.norm(y)
    return None if norms == 0 else float(1 - x @ y / norms)
