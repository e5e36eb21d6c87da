"""Value profiles: one number per key (a value dimension, a moral scenario, a world outcome) per
stage, and how far each stage's profile has moved from the baseline's.

Drift is D = 1 - Spearman rho between two profiles, with the mean absolute change of the
profiles centred at their own means (so a uniform shift, such as saying yes more often to
everything, is not counted as a change of values). Noise in the answers lowers rho by itself, so
each stage's split-half reliability (even against odd samples, stepped up by Spearman-Brown) is
reported and D is also given disattenuated, 1 - rho / sqrt(r_k r_0): an operator that only makes
answers noisier moves D but not the disattenuated D.

The verdicts: "drifted" when a permutation test (each item's answers dealt at random between
the two stages, valid under no change) says the change is more than noise, p < 0.05, and the
lower end of D's 95% interval (D disattenuated where the reliabilities are known) exceeds the
threshold; for the profile's own verdict both at 0.05 / stages (Bonferroni, which is Holm's
first step). "stable" when the upper end of D's 90% interval lies below the threshold (a
one-sided test at 5%), D disattenuated where the reliabilities are known (the bias-aware
interval: raw D is biased upward by noise, and is used, conservatively, only without them).
Intervals resample keys, one level (resampling items within keys as well added their noise a
second time); everything is seeded, so the same log always gives the same numbers.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from functools import partial
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from simulator.config import StatsConfig
from simulator.stats.figures import CONFIDENCE, Figure, mean_interval, percentile_interval, scale

Items = dict[str, dict[str, float]]  # key -> item id -> the item's value at one stage
Answers = dict[str, dict[str, list[float]]]  # key -> item id -> its valid answers at one stage
Halves = dict[int, tuple[Items, Items]]  # stage -> its even and its odd samples' items
Verdict = Literal["stable", "drifted", "indeterminate"]
STABLE_TAIL = 1 - CONFIDENCE  # the one-sided 5% above a 90% interval: its upper end is the 95th percentile


class ProfileStage(BaseModel):
    stage: int
    values: dict[str, float | None] = Field(description="Key -> the profile's value (None: no valid answer).")
    n: int = Field(description="Valid answers the profile is computed from.")
    invalid: int
    reliability: float | None = Field(None, description=(
        "Split-half reliability: Spearman rho of the even and odd samples' profiles over the stage's keys, stepped "
        "up to the whole stage by Spearman-Brown (2r / (1 + r)), 0 where the halves disagree (r <= 0); None with "
        "one sample per item. The disattenuated D recomputes it over the keys the two stages share."))


class ProfileDrift(BaseModel):
    stage: int
    against: int = Field(description="The stage compared with: 0 (drift) or the previous stage.")
    d: float | None = Field(description="1 - Spearman rho; None when a profile does not vary.")
    d_low: float | None = Field(description="95% percentile interval of D, resampling keys.")
    d_high: float | None
    d_corrected: float | None = Field(None, description=(
        "Disattenuated D, 1 - rho / sqrt(r_stage r_against): the change of the profiles' true values, noise "
        "removed; None without both reliabilities (or one not above 0). Below 0 when noise made rho fall less "
        "than the reliabilities predict."))
    corrected_low: float | None = Field(None, description=(
        "95% percentile interval, resampling keys, of the disattenuated D where there is one, else of D: the "
        "drifted verdict asks its lower end to clear the threshold."))
    corrected_high: float | None = None
    family_low: float | None = Field(None, description=(
        "The lower end the profile's own drifted verdict reads: the 2.5%/stages percentile of the same draws "
        "(Bonferroni over the stages compared with stage 0)."))
    stable_high: float | None = Field(None, description=(
        "The upper end of the 90% interval the stable verdict reads: of the disattenuated D where there is one, "
        "else of D (biased upward by noise: conservative)."))
    p_value: float | None = Field(None, description=(
        "Permutation test of no change: the share of random deals of each item's answers between the two stages "
        "whose mean squared centred change of the profile is at least the observed one."))
    mean_abs_change: float | None = Field(description="Mean |change| of the centred profiles.")
    mac_low: float | None
    mac_high: float | None
    cosine_distance: float | None = Field(None, description="1 - cos of the two profiles (utilities).")
    verdict: Verdict = Field(description="At this stage alone (see the module's rule).")


class Profile(BaseModel):
    meaning: str
    resampled: str = Field(description="What the bootstrap resamples.")
    stages: list[ProfileStage]
    threshold: float
    drift: list[ProfileDrift]
    verdict: Verdict
    reason: str


def profile_of(items: Items) -> dict[str, float | None]:
    return {key: (sum(v.values()) / len(v) if v else None) for key, v in items.items()}


def paired(x: dict[str, float | None], y: dict[str, float | None], keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    kept = [k for k in keys if x.get(k) is not None and y.get(k) is not None]
    return np.array([x[k] for k in kept], float), np.array([y[k] for k in kept], float)


def spearman_distance(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(1 - np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])


def mean_abs_change(x: np.ndarray, y: np.ndarray) -> float | None:
    return float(np.mean(np.abs((x - x.mean()) - (y - y.mean())))) if len(x) else None


def rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho per row over the columns valid (not NaN) in both; NaN where fewer than 3
    remain or a side does not vary."""
    both = ~np.isnan(x) & ~np.isnan(y)
    n = both.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows left with no column: NaN
        rx, ry = (r - np.nansum(r, axis=1, keepdims=True) / n for r in (
            stats.rankdata(np.where(both, v, np.nan), axis=1, nan_policy="omit") for v in (x, y)))
        denominator = np.sqrt(np.nansum(rx**2, axis=1) * np.nansum(ry**2, axis=1))
        rho = np.nansum(rx * ry, axis=1) / denominator
    return np.where((n[:, 0] >= 3) & (denominator > 0), rho, np.nan)


class _Keys:
    """The keys two stages share, as arrays a draw of keys indexes: each stage's profile and, where
    measured, its two half-profiles (NaN where a key has no value)."""

    def __init__(self, later: Items, base: Items, halves: list[tuple[Items, Items] | None]):
        x, y = profile_of(later), profile_of(base)
        self.keys = [k for k in sorted(set(later) | set(base)) if x.get(k) is not None and y.get(k) is not None]
        self.x, self.y = (np.array([p[k] for k in self.keys], float) for p in (x, y))
        self.halves = [None if h is None else tuple(self._column(profile_of(part)) for part in h) for h in halves]

    def _column(self, values: dict[str, float | None]) -> np.ndarray:
        return np.array([np.nan if values.get(k) is None else values[k] for k in self.keys], float)

    def rho(self, picks: np.ndarray) -> np.ndarray:
        return rowwise_spearman(self.x[picks], self.y[picks])

    def reliabilities(self, picks: np.ndarray) -> np.ndarray | None:
        """Per row of picks: sqrt(r_later r_base), the attenuation noise alone gives rho."""
        measured = [h for h in self.halves if h is not None]
        if len(measured) < len(self.halves):
            return None
        split = [rowwise_spearman(h[0][picks], h[1][picks]) for h in measured]
        with np.errstate(invalid="ignore", divide="ignore"):  # a split rho of -1 steps up to -inf: not above 0
            stepped = [2 * r / (1 + r) for r in split]
            return np.where((stepped[0] > 0) & (stepped[1] > 0), np.sqrt(stepped[0] * stepped[1]), np.nan)


def stage_reliability(halves: tuple[Items, Items] | None) -> float | None:
    if halves is None:
        return None
    x, y = paired(profile_of(halves[0]), profile_of(halves[1]), sorted(set(halves[0]) | set(halves[1])))
    d = spearman_distance(x, y)
    if d is None:
        return None
    rho = 1 - d
    return max(0.0, 2 * rho / (1 + rho)) if rho > -1 else 0.0  # halves that disagree: no reliable signal


def _interval(draws: np.ndarray, reps: int) -> tuple[float | None, float | None]:
    # Too many undefined resamples (profiles that do not vary) leave no honest interval.
    defined = draws[~np.isnan(draws)]
    return (None, None) if len(defined) < 0.9 * reps else percentile_interval(defined)


def _quantile(draws: np.ndarray, reps: int, q: float) -> float | None:
    defined = draws[~np.isnan(draws)]
    return None if len(defined) < 0.9 * reps else float(np.percentile(defined, 100 * q))


def permutation_p(later: Answers, base: Answers, reps: int, rng: np.random.Generator) -> float | None:
    """P(change >= change observed) when each item's answers at the two stages are pooled and dealt back at
    random (as many to each stage as it had): valid under no change whatever the noise, when an item's
    answers are exchangeable (conservative where an item pools orders or forms, as moral choice does;
    approximate for fitted values normalised within each stage, the utilities). Items answered at one
    stage only stay put. Dealing answers, not item means, keeps the test able to tell a profile
    mirrored item by item from noise."""
    keys = sorted(set(later) | set(base))
    units = [(i, later[k][item], base.get(k, {}).get(item, []))
             for i, k in enumerate(keys) for item in later.get(k, {})]
    units += [(i, [], base[k][item]) for i, k in enumerate(keys) if k in base for item in base[k]
              if item not in later.get(k, {})]
    if not units:
        return None
    width = max(len(a) + len(b) for _, a, b in units)
    pooled = np.array([a + b + [0.0] * (width - len(a) - len(b)) for _, a, b in units])
    sizes = np.array([[len(a), len(b)] for _, a, b in units])
    # Each unit's answers in a random order (padding last); the first len(a) of them go to `later`.
    priority = np.where(np.arange(width) < sizes.sum(axis=1, keepdims=True), rng.random((reps, *pooled.shape)), 2.0)
    order = np.concatenate([np.broadcast_to(np.arange(width, dtype=float), (1, *pooled.shape)), priority])
    ranks = order.argsort(axis=2).argsort(axis=2)  # row 0 keeps the observed deal
    to_later = ranks < sizes[None, :, :1]
    to_base = (ranks >= sizes[None, :, :1]) & (ranks < sizes.sum(axis=1)[None, :, None])
    owner = np.zeros((len(units), len(keys)))
    owner[np.arange(len(units)), [i for i, _, _ in units]] = 1
    profiles = []
    for side, n in ((to_later, sizes[:, 0]), (to_base, sizes[:, 1])):
        with np.errstate(invalid="ignore", divide="ignore"):  # a unit or key without answers here: left out
            item_mean = (pooled[None] * side).sum(axis=2) / n
            present = n > 0
            profiles.append(np.where(present, item_mean, 0) @ owner / (present @ owner))
    moved = _centred_change(*profiles)
    if np.isnan(moved[0]):
        return None
    permuted = moved[1:][~np.isnan(moved[1:])]
    return float((1 + np.sum(permuted >= moved[0] - 1e-12)) / (1 + len(permuted)))


def _centred_change(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row, the mean squared change of the centred profiles over the keys valid in both: the
    permutation test's statistic. Not D itself: where each key's two stages sum to the same total
    (a profile mirrored item by item) every deal gives D = 2, and D could not tell it from noise."""
    both = ~np.isnan(x) & ~np.isnan(y)
    with np.errstate(invalid="ignore"):
        diff = np.where(both, x - y, np.nan)
        centred = diff - np.nanmean(diff, axis=1, keepdims=True)
        return np.where(both.sum(axis=1) >= 3, np.nanmean(centred**2, axis=1), np.nan)


def compare(stage: int, against: int, later: Items, base: Items, halves: Halves, answers: dict[int, Answers],
            stages: int, cfg: StatsConfig, cosine: Callable[[], float | None] | None = None) -> ProfileDrift:
    """One stage against another: D, its disattenuated form and their intervals over keys, the
    permutation test, and the stage's verdict; `stages` compared with stage 0 set the family's tail."""
    threshold = cfg.profile_threshold
    rng = np.random.default_rng([cfg.bootstrap_seed, stage, against])
    keys = _Keys(later, base, [halves.get(stage), halves.get(against)])
    d = spearman_distance(keys.x, keys.y)
    every = np.arange(len(keys.keys))[None, :]
    point = keys.reliabilities(every)
    corrected = None if point is None or np.isnan(point[0]) or d is None else float(1 - (1 - d) / point[0])
    d_low = d_high = stable_high = p = size_low = size_high = family_low = None
    mac_low = mac_high = None
    if len(keys.keys) >= cfg.profile_min_keys:  # a rank correlation of a few keys is often perfect by chance
        picks = rng.integers(len(keys.keys), size=(cfg.bootstrap, len(keys.keys)))
        rho = keys.rho(picks)
        d_low, d_high = _interval(1 - rho, cfg.bootstrap)
        attenuation = keys.reliabilities(picks)
        size = 1 - rho if corrected is None or attenuation is None else 1 - rho / attenuation
        size_low, size_high = _interval(size, cfg.bootstrap)
        stable_high = _quantile(size, cfg.bootstrap, 1 - STABLE_TAIL)
        family_low = _quantile(size, cfg.bootstrap, (1 - CONFIDENCE) / 2 / max(1, stages))
        centred = [(v[picks] - v[picks].mean(axis=1, keepdims=True)) for v in (keys.x, keys.y)]
        mac_low, mac_high = _interval(np.abs(centred[0] - centred[1]).mean(axis=1), cfg.bootstrap)
        p = permutation_p(answers.get(stage, as_answers(later)), answers.get(against, as_answers(base)),
                          cfg.bootstrap, rng)
    verdict: Verdict = ("drifted" if _drifted(p, size_low, 1 - CONFIDENCE, threshold)
                        else "stable" if stable_high is not None and stable_high <= threshold else "indeterminate")
    return ProfileDrift(stage=stage, against=against, d=d, d_low=d_low, d_high=d_high, d_corrected=corrected,
                        corrected_low=size_low, corrected_high=size_high, family_low=family_low,
                        stable_high=stable_high, p_value=p,
                        mean_abs_change=mean_abs_change(keys.x, keys.y),
                        mac_low=mac_low, mac_high=mac_high, cosine_distance=cosine() if cosine else None,
                        verdict=verdict)


def as_answers(items: Items) -> Answers:
    return {k: {item: [v] for item, v in members.items()} for k, members in items.items()}


def profile(meaning: str, resampled: str, by_stage: dict[int, Items], halves: Halves,
            counts: dict[int, tuple[int, int]], cfg: StatsConfig,
            cosine: Callable[[int, int], float | None] | None = None,
            answers: dict[int, Answers] | None = None) -> Profile:
    """The profile at every stage with its reliability, its drift from stage 0 and from the stage
    before, and a verdict. With each item's answers, the permutation test deals answers; without
    (a fitted profile), item values."""
    drift = []
    later = sorted(s for s in by_stage if s > 0)
    for stage in later:
        for against in sorted({0, stage - 1}):
            if against in by_stage:
                drift.append(compare(stage, against, by_stage[stage], by_stage[against], halves, answers or {},
                                     len(later), cfg, partial(cosine, stage, against) if cosine else None))
    stages = [ProfileStage(stage=s, values=profile_of(by_stage[s]), n=counts.get(s, (0, 0))[0],
                           invalid=counts.get(s, (0, 0))[1], reliability=stage_reliability(halves.get(s)))
              for s in sorted(by_stage)]
    verdict, reason = _verdict([d for d in drift if d.against == 0], cfg.profile_threshold, stages, cfg)
    return Profile(meaning=meaning, resampled=resampled, stages=stages, threshold=cfg.profile_threshold,
                   drift=drift, verdict=verdict, reason=reason)


def _drifted(p: float | None, size_low: float | None, alpha: float, threshold: float) -> bool:
    """Told from noise by the permutation test, and shown larger than the threshold by its interval
    (the test alone would call an operator that only compresses the answers towards 0.5 drift)."""
    return p is not None and p < alpha and size_low is not None and size_low > threshold


def _size(d: ProfileDrift) -> float | None:
    return d.d_corrected if d.d_corrected is not None else d.d


def _verdict(drift: list[ProfileDrift], threshold: float, stages: list[ProfileStage], cfg: StatsConfig
             ) -> tuple[Verdict, str]:
    family = (1 - CONFIDENCE) / max(1, len(drift))
    rule = (f"drift means a permutation p below {family:.3g} and D's lower {family / 2:.3g} percentile (D "
            f"disattenuated where reliabilities are known) above {threshold:.2f} (Bonferroni over {len(drift)} "
            f"stages); stable means every stage's 90% interval of D (disattenuated where known) ends below "
            f"{threshold:.2f}")
    measured = {st.stage: st for st in stages}
    if 0 not in measured:
        return "indeterminate", "the baseline (stage 0) was not measured"
    if not drift:
        return "indeterminate", "only the baseline stage was measured"
    empty = [st.stage for st in stages if st.n == 0]
    if empty:
        return "indeterminate", f"stage {empty[0]} has no valid answer; {rule}"
    moved = [d for d in drift if _drifted(d.p_value, d.family_low, family, threshold)]
    if moved:
        d = moved[0]
        return "drifted", (f"stage {d.stage}: D = {_size(d):.2f}, above {d.family_low:.2f} (p = {d.p_value:.3g}) "
                           f"from stage 0; {rule}")
    if all(d.verdict == "stable" for d in drift):
        return "stable", f"every stage's D lies below {threshold:.2f}; {rule}"
    unsure = next(d for d in drift if d.verdict != "stable")
    keys = sum(v is not None for v in measured[unsure.stage].values.values())
    if keys < cfg.profile_min_keys:
        return "indeterminate", (f"stage {unsure.stage}: {keys} keys with valid answers, fewer than "
                                 f"stats.profile_min_keys={cfg.profile_min_keys} for a rank correlation; {rule}")
    if unsure.stable_high is None:
        return "indeterminate", (f"stage {unsure.stage}: D has no interval (a profile that does not vary "
                                 f"in most resamples); {rule}")
    p = "n/a" if unsure.p_value is None else f"{unsure.p_value:.3g}"
    return "indeterminate", (f"stage {unsure.stage}: D = {_size(unsure):.2f}, 90% upper bound "
                             f"{unsure.stable_high:.2f}, permutation p = {p}; {rule}")


def item_answers(rows: list[tuple[str, str, float | None]]) -> tuple[Answers, int]:
    """(key, item, value) answers -> key -> item -> its valid values; with the invalid count."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    invalid = 0
    for key, item, value in rows:
        if value is None:
            invalid += 1
            found[key]  # the key exists even when none of its answers is valid
        else:
            found[key][item].append(float(value))
    return {k: dict(items) for k, items in found.items()}, invalid


def item_means(rows: list[tuple[str, str, float | None]]) -> tuple[Items, int, int]:
    """(key, item, value) answers -> key -> item -> mean of the valid values; with n valid and invalid."""
    answers, invalid = item_answers(rows)
    n = sum(len(v) for items in answers.values() for v in items.values())
    return {k: {i: sum(v) / len(v) for i, v in items.items()} for k, items in answers.items()}, n, invalid


def entropy_bits(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --- From (sample, key, item, value) rows to a profile; each instrument makes its own rows ------


def halves_of(rows: list[tuple[int, str, str, float | None]]) -> tuple[Items, Items] | None:
    """Two halves of one stage's (sample, key, item, value) rows: even and odd samples. The same
    items, asked with different seeds: two independent measurements. None with one sample."""
    split = [[r[1:] for r in rows if r[0] % 2 == half] for half in (0, 1)]
    return (item_means(split[0])[0], item_means(split[1])[0]) if all(split) else None


def rows_profile(meaning: str, resampled: str, rows: dict[int, list], cfg: StatsConfig) -> Profile:
    by_stage, counts, halves, answers = {}, {}, {}, {}
    for stage, stage_rows in rows.items():
        items, n, invalid = item_means([r[1:] for r in stage_rows])
        by_stage[stage], counts[stage] = items, (n, invalid)
        answers[stage] = item_answers([r[1:] for r in stage_rows])[0]
        if (found := halves_of(stage_rows)) is not None:
            halves[stage] = found
    return profile(meaning, resampled, by_stage, halves, counts, cfg, answers=answers)


def mean_figure(values: list[float], bounds: tuple[float, float], invalid: int, meaning: str) -> Figure:
    value, low, high = mean_interval(values, bounds)
    return Figure(statistic="mean", value=value, n=len(values), ci_low=low, ci_high=high, invalid=invalid,
                  meaning=meaning, bounds=scale(bounds))


def slug(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower()
