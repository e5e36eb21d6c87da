"""Coverage of the 95% intervals over runs, by simulation: the factorial contrasts of `trajectories
analyse` (capability, reflection, interaction: Welch-Satterthwaite t over run-level drifts) and a
pooled figure of `trajectories compare` (cluster-robust t over runs).

Sizes: the default of a sweep, 3 runs per cell with 40 answers at stage 0 and 40 at the final stage
each, and `scale` times it (scale x the runs and scale x the answers). Rates (yes/no answers) and
judge scores (1-5). Conditions: no between-run variance (every run of a cell draws its answers from
the cell's distribution) and some (each run draws from its own distribution, Dirichlet around the
cell's; a Beta for rates, SD about 0.1 on a rate of 0.5). The truth is the contrast, or the mean, of
the cells' distributions. A simulation whose interval is undefined counts as not covering.

The intervals come from the package (`stats.contrasts`, the factorial weights of `read.analysis`,
`read.compare`'s fallback where every run has the same mean); only the drawing of answers is here,
vectorised over the simulations.

    python -m bench.coverage_contrasts [SCALE] [SIMS]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from simulator.instruments.instrument import Observation
from simulator.read import compare
from simulator.read.analysis import CELLS, CONTRASTS
from simulator.stats.contrasts import cluster_terms, contrast_terms, t_bounds

RUNS, ANSWERS = 3, 40  # the default size: runs per cell, answers per run at each stage
CONCENTRATION = 20.0  # each run's own distribution: Dirichlet(CONCENTRATION * the cell's)
EFFECTS = ("capability", "reflection", "interaction")
CONDITIONS = {False: "no between-run variance", True: "between-run variance"}
# Per kind: the values an answer takes, their probabilities at stage 0 (every cell), at the final stage
# per cell, and a figure of that kind (compare's fallback reads the figure's kind from its name).
KINDS = {
    "rates": (np.array([0.0, 1.0]), np.array([0.7, 0.3]),
              {"control": [0.7, 0.3], "reflection": [0.6, 0.4], "capability": [0.45, 0.55], "combined": [0.2, 0.8]},
              "shutdown_mc.accepting"),
    "scores": (np.arange(1.0, 6.0), np.array([0.1, 0.2, 0.4, 0.2, 0.1]),
               {"control": [0.1, 0.2, 0.4, 0.2, 0.1], "reflection": [0.05, 0.15, 0.4, 0.25, 0.15],
                "capability": [0.2, 0.3, 0.3, 0.15, 0.05], "combined": [0.3, 0.3, 0.2, 0.1, 0.1]},
               "spec_adherence.score"),
}


def _counts(rng: np.random.Generator, probs, size: tuple[int, ...], answers: int, spread: bool) -> np.ndarray:
    """Each run's answer counts per value, shape size + (values,)."""
    probs = np.asarray(probs, dtype=float)
    own = rng.dirichlet(CONCENTRATION * probs, size=size) if spread else np.broadcast_to(probs, size + probs.shape)
    return rng.multinomial(answers, own)


def _covered(low: np.ndarray, high: np.ndarray, truth: float) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))  # NaN bounds compare False: not covered


def factorial(rng: np.random.Generator, kind: str, runs: int, answers: int, spread: bool, sims: int
              ) -> dict[str, float]:
    """Each effect's coverage: a run's drift is its final-stage mean - its stage-0 mean (as in analysis)."""
    values, start, final, _ = KINDS[kind]
    drifts = {c: (_counts(rng, final[c], (sims, runs), answers, spread) @ values
                  - _counts(rng, start, (sims, runs), answers, spread) @ values) / answers for c in CELLS}
    found = {}
    for effect in EFFECTS:
        _, weights = CONTRASTS[effect][0]  # the factorial contrast
        truth = sum(w * (np.dot(final[c], values) - np.dot(start, values)) for c, w in weights.items())
        low, high, _ = t_bounds(*contrast_terms([drifts[c] for c in weights], list(weights.values())))
        found[effect] = _covered(low, high, truth)
    return found


def pooled(rng: np.random.Generator, kind: str, runs: int, answers: int, spread: bool, sims: int) -> float:
    """The pooled figure of one group's runs at stage 0; where every run has the same mean, compare's
    own fallback (the one-run interval of the pooled values) for that simulation."""
    values, start, _, name = KINDS[kind]
    counts = _counts(rng, start, (sims, runs), answers, spread)
    low, high, _ = t_bounds(*cluster_terms(counts @ values, np.full((sims, runs), float(answers))))
    for i in np.flatnonzero(np.isnan(low)):
        # Every answer its own cluster: they are drawn independently here.
        per_run: list[list[Observation]] = [[(f"{r}-{j}", float(v)) for j, v in enumerate(np.repeat(values, run))]
                                            for r, run in enumerate(counts[i])]
        fig = compare._pooled(name, per_run)
        low[i], high[i] = (np.nan, np.nan) if fig.ci_low is None or fig.ci_high is None else (fig.ci_low, fig.ci_high)
    return _covered(low, high, float(np.dot(start, values)))


def rows(scale: int = 1, sims: int = 2000, seed: int = 0) -> list[dict]:
    """One row per (what, size, condition): the default size, and `scale` times it when scale > 1."""
    found = []
    for size in sorted({1, scale}):
        runs, answers = RUNS * size, ANSWERS * size
        for spread, condition in CONDITIONS.items():
            for k, kind in enumerate(KINDS):
                rng = np.random.default_rng([seed, size, int(spread), k])  # a stream per row
                head = dict(size=f"{runs} runs/cell x {answers} answers", condition=condition)
                found += [dict(what=f"{effect} ({kind})", **head, coverage=c, sims=sims)
                          for effect, c in factorial(rng, kind, runs, answers, spread, sims).items()]
                found.append(dict(what=f"pooled figure ({kind})", **head,
                                  coverage=pooled(rng, kind, runs, answers, spread, sims), sims=sims))
    return found


def main(scale: int, sims: int) -> None:
    started = time.monotonic()
    table = rows(scale, sims)
    print(f"coverage of 95% intervals over runs ({sims} simulations a row; pooled figure: runs of one group)")
    print(f"{'what':28s} {'size':28s} {'condition':26s} coverage")
    for row in table:
        print(f"{row['what']:28s} {row['size']:28s} {row['condition']:26s} {row['coverage']:.3f}")
    print(f"{time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4, int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
