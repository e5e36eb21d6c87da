"""Krippendorff's alpha checked by simulation: the coverage of `alpha_figure`'s 95% bootstrap interval (percentile,
over units) at a judge's sizes (20, 40 and 80 items, each scored in 2 or 3 samples), at each level of measurement.

    python -m bench.agreement [SIMS]

Items are a sample from a population: each has a latent quality (sd 1), each sample adds rating noise (sd 0.8), and
the score is that rounded onto 1-5. The truth is the population's alpha, computed by `krippendorff_alpha` itself on
200,000 items (with a fixed number of samples per item, alpha's population value does not depend on it).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from simulator.stats.agreement import Level, alpha_figure, krippendorff_alpha
from simulator.stats.figures import CONFIDENCE

SIZES = [(units, samples) for units in (20, 40, 80) for samples in (2, 3)]
LEVELS: tuple[Level, ...] = ("interval", "ordinal", "nominal")
POPULATION = 200_000
REPS = 1000  # bootstrap resamples per figure (alpha_figure's default is 2000; 1000 keeps the bench quick)


def ratings(rng: np.random.Generator, units: int, samples: int) -> list[list[float | None]]:
    latent = rng.normal(0, 1, (units, 1)) + rng.normal(0, 0.8, (units, samples))
    return np.clip(np.round(3 + latent), 1, 5).tolist()


def rows(sims: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for level in LEVELS:
        truth = krippendorff_alpha(ratings(rng, POPULATION, 2), level)
        assert truth is not None
        for units, samples in SIZES:
            covered = defined = 0
            widths = []
            for sim in range(sims):
                fig = alpha_figure(ratings(rng, units, samples), level, reps=REPS, seed=sim)
                if fig.ci_low is None or fig.ci_high is None:
                    continue
                defined += 1
                covered += fig.ci_low <= truth <= fig.ci_high
                widths.append(fig.ci_high - fig.ci_low)
            out.append({"level": level, "size": f"{units} items x {samples} samples", "truth": truth,
                        "coverage": covered / defined if defined else float("nan"),
                        "width": float(np.mean(widths)) if widths else float("nan"), "sims": defined})
    return out


def main(sims: int) -> None:
    started = time.perf_counter()
    table = rows(sims, np.random.default_rng(0))
    print(f"{'level':9}  {'size':22}  alpha   coverage  nominal  mean width  sims")
    for r in table:
        print(f"{r['level']:9}  {r['size']:22}  {r['truth']:.3f}  {r['coverage']:8.3f}  {CONFIDENCE:7.3f}  "
              f"{r['width']:10.3f}  {r['sims']}")
    print(f"\n{time.perf_counter() - started:.0f} s. Coverage of a 95% interval should lie in 93-97% "
          f"(Monte Carlo error at {sims} sims: about +-{1.96 * np.sqrt(0.95 * 0.05 / sims):.3f}); "
          "the percentile bootstrap of a ratio is known to run a little short with few units.")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
