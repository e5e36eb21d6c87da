"""The statistics checked by simulation, not only against formulas: for rates, judge-score means, kappa, profile
drift D and the factorial contrasts, the coverage of the 95% intervals and the verdicts' error rates (drifted when
nothing changed; stable when the change equals the threshold), at the instruments' default sizes and at 4x them.
Every figure is computed by the package's own functions on data whose truth is known.

    python -m bench.coverage [SIMS]

Items are a sample from a population (each with its own answer probability), answered in several samples and at
both stages, as the instruments administer them; the truth is the population's value. Binary answers; scores are
1-5 with a per-item distribution.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from bench import coverage_contrasts
from simulator.config import StatsConfig
from simulator.measure.summary import stability
from simulator.stats.figures import clustered_rate, difference, kappa_figure, mean_interval
from simulator.stats.profiles import rows_profile

CFG = StatsConfig()
THRESHOLD = CFG.rate_threshold
SIZES = {"rate": (12, 2), "mean": (4, 2), "profile": (14, 4, 2)}  # shutdown_mc, shutdown_open, endorsement
POWER_ITEMS = 192  # where a 0.10 change of a rate can be told from none


def _rate_items(rng: np.random.Generator, items: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    p = 0.9 * rng.beta(2, 2, items)  # population mean 0.45; room for a shift of 0.1 without clipping
    return p, p + shift


def _binary(rng: np.random.Generator, p: np.ndarray, samples: int) -> tuple[list[bool], list[str]]:
    answers = rng.random((len(p), samples)) < p[:, None]
    return [bool(a) for a in answers.ravel()], [f"i{i}" for i in range(len(p)) for _ in range(samples)]


def rate_rows(sims: int, scale: int, rng: np.random.Generator) -> list[dict]:
    items, samples = SIZES["rate"][0] * scale, SIZES["rate"][1]
    covered = naive = 0
    for _ in range(sims):
        outcomes, clusters = _binary(rng, rng.beta(2, 2, items), samples)
        _, low, high = clustered_rate(outcomes, clusters)
        covered += low <= 0.5 <= high
        _, low, high = clustered_rate(outcomes, None)
        naive += low <= 0.5 <= high
    size = f"{items} items x {samples} samples"
    return [row("rate (clustered Jeffreys)", size, "coverage", covered, sims),
            row("rate (as if independent, before)", size, "coverage", naive, sims)]


def _scores(rng: np.random.Generator, items: int, samples: int, shift: int = 0) -> tuple[list[float], list[str]]:
    """Each item its own distribution over 1-5 (Dirichlet(1,...)); the population mean is 3 (+ shift)."""
    weights = rng.dirichlet(np.ones(5), items)
    drawn = np.array([rng.choice(5, samples, p=w) for w in weights]) + 1 + shift
    return [float(v) for v in np.clip(drawn, 1, 5).ravel()], [f"i{i}" for i in range(items) for _ in range(samples)]


def mean_rows(sims: int, scale: int, rng: np.random.Generator) -> list[dict]:
    items, samples = SIZES["mean"][0] * scale, SIZES["mean"][1]
    covered = diff_covered = 0
    for _ in range(sims):
        values, clusters = _scores(rng, items, samples)
        _, low, high = mean_interval(values, clusters=clusters)
        covered += low is not None and low <= 3.0 <= high
        later, later_clusters = _scores(rng, items, samples)
        _, low, high = difference("mean", later, values, later_clusters, clusters)
        diff_covered += low is not None and low <= 0.0 <= high
    size = f"{items} questions x {samples} samples"
    return [row("judge-score mean (clustered t)", size, "coverage", covered, sims),
            row("judge-score change (Welch, clustered)", size, "coverage", diff_covered, sims)]


def verdict_rows(sims: int, scale: int, rng: np.random.Generator, items: int | None = None) -> list[dict]:
    """Rates: the same items at both stages (as the instruments ask them), true change 0 and = threshold."""
    items, samples = items or SIZES["rate"][0] * scale, SIZES["rate"][1]
    counts = {"none": {"drifted": 0, "stable": 0}, "threshold": {"drifted": 0, "stable": 0}}
    covered = 0
    for _ in range(sims):
        for change, shift in (("none", 0.0), ("threshold", THRESHOLD)):
            base_p, later_p = _rate_items(rng, items, shift)
            (b, bc), (lt, lc) = _binary(rng, base_p, samples), _binary(rng, later_p, samples)
            result = stability("shutdown_mc.accepting", {0: list(zip(bc, b)), 1: list(zip(lc, lt))}, CFG)
            counts[change][result.verdict] = counts[change].get(result.verdict, 0) + 1
            d = result.drift[0]
            covered += d.ci_low <= shift <= d.ci_high
    size = f"{items} items x {samples} samples"
    return [row("rate change (Newcombe, clustered)", size, "coverage", covered, 2 * sims),
            row("rate verdict, no change", size, "P(stable) (power)", counts["none"]["stable"], sims),
            row("rate verdict, change = threshold", size, "P(drifted) (false drift)", counts["threshold"]["drifted"],
                sims),
            row("rate verdict, change = threshold", size, "P(stable) (false stable)", counts["threshold"]["stable"],
                sims)]


def kappa_rows(sims: int, scale: int, rng: np.random.Generator) -> list[dict]:
    """Two ratings agreeing beyond chance: kappa 0.5 with both marginals at 0.5 (P(agree) = 0.75)."""
    n = 24 * scale
    covered = defined = 0
    for _ in range(sims):
        a = rng.random(n) < 0.5
        b = np.where(rng.random(n) < 0.75, a, ~a)
        fig = kappa_figure(list(zip(a.tolist(), b.tolist())), 0, "")
        if fig.ci_low is not None:
            defined += 1
            covered += fig.ci_low <= 0.5 <= fig.ci_high
    return [row("kappa (Cohen 1960 SE)", f"{n} pairs", "coverage", covered, defined)]


def _at_threshold(rng: np.random.Generator, keys: int) -> Callable:
    """Later rates that are the earlier ones reordered so that 1 - Spearman rho is the smallest value at or
    above the threshold (adjacent ranks swapped at random until it is reached)."""
    def later(rates: np.ndarray) -> np.ndarray:
        order = np.arange(keys)
        while 6 * np.sum((order - np.arange(keys)) ** 2) / (keys * (keys**2 - 1)) < CFG.profile_threshold:
            i = rng.integers(keys - 1)
            order[[i, i + 1]] = order[[i + 1, i]]
        ranked = np.sort(rates)
        return ranked[order][np.argsort(np.argsort(rates))]
    return later


def _profile(rng: np.random.Generator, keys: int, items: int, samples: int, later_rates: Callable) -> tuple:
    rates = rng.random(keys)
    later = later_rates(rates)
    rows = {stage: [(s, f"k{k}", str(i), float(rng.random() < r[k]))
                    for k in range(keys) for i in range(items) for s in range(samples)]
            for stage, r in ((0, rates), (1, later))}
    true_d = 1 - float(np.corrcoef(np.argsort(np.argsort(rates)), np.argsort(np.argsort(later)))[0, 1])
    return rows_profile("simulated", "keys", rows, StatsConfig(bootstrap=400)), true_d


def _mixed(rng: np.random.Generator, weight: float) -> Callable:
    """Later rates that keep `weight` of the earlier ones and take the rest from fresh ones: a change of ranking."""
    return lambda rates: weight * rates + (1 - weight) * rng.random(len(rates))


def profile_rows(sims: int, scale: int, rng: np.random.Generator) -> list[dict]:
    keys, items, samples = SIZES["profile"][0], SIZES["profile"][1] * scale, SIZES["profile"][2]
    size = f"{keys} keys x {items} items x {samples} samples"
    out: dict[str, list] = {"none": [], "noisier": [], "D = threshold": [], "reordered": []}
    for _ in range(sims):
        out["none"].append(_profile(rng, keys, items, samples, lambda r: r))
        out["noisier"].append(_profile(rng, keys, items, samples, lambda r: r + 0.5 * (0.5 - r)))
        out["D = threshold"].append(_profile(rng, keys, items, samples, _at_threshold(rng, keys)))
        out["reordered"].append(_profile(rng, keys, items, samples, _mixed(rng, 0.0)))
    rows = []
    for condition, runs in out.items():
        verdicts = [p.verdict for p, _ in runs]
        corrected = [(p.drift[0], d) for p, d in runs if p.drift[0].corrected_low is not None]
        covered = sum(d.corrected_low <= truth <= d.corrected_high for d, truth in corrected)
        rows += [row(f"profile D ({condition})", size, "coverage of disattenuated D", covered, len(corrected)),
                 row(f"profile D ({condition})", size, "P(drifted)", verdicts.count("drifted"), sims),
                 row(f"profile D ({condition})", size, "P(stable)", verdicts.count("stable"), sims)]
    return rows


def row(what: str, size: str, measure: str, hits: int, sims: int) -> dict:
    return {"what": what, "size": size, "measure": measure, "value": hits / sims if sims else float("nan"),
            "sims": sims}


def main(sims: int) -> None:
    started = time.perf_counter()
    rows: list[dict] = []
    for scale in (1, 4):
        rng = np.random.default_rng(scale)
        for rows_of, n in ((rate_rows, sims), (mean_rows, sims), (verdict_rows, sims // 2), (kappa_rows, sims),
                           (profile_rows, max(50, sims // 4))):
            rows += rows_of(n, scale, rng)
        if scale == 4:
            rows += verdict_rows(sims // 2, scale, rng, items=POWER_ITEMS)
    rows += [{"what": r["what"], "size": r["size"], "measure": f"{r['condition']}: coverage",
              "value": r["coverage"], "sims": r["sims"]} for r in coverage_contrasts.rows(scale=4, sims=sims)]
    width = max(len(r["what"]) for r in rows)
    size_width = max(len(r["size"]) for r in rows)
    print(f"{'what'.ljust(width)}  {'size'.ljust(size_width)}  {'measure':42}  value   sims")
    for r in rows:
        cells = [r["what"].ljust(width), r["size"].ljust(size_width), f"{r['measure']:42}", f"{r['value']:.3f}"]
        print("  ".join(cells), r["sims"])
    print(f"\n{time.perf_counter() - started:.0f} s. Coverage of a 95% interval should lie in 93-97% "
          f"(Monte Carlo error at {sims} sims: about +-{1.96 * np.sqrt(0.95 * 0.05 / sims):.3f}).")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
