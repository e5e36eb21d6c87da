"""Value profiles: one number per key (a value dimension, a moral scenario, a world outcome) per
stage, and how far each stage's profile has moved from the baseline's.

Drift is D = 1 - Spearman rho between two profiles, with the mean absolute change of the
profiles centred at their own means (so a uniform shift, such as saying yes more often to
everything, is not counted as a change of values). Intervals come from a seeded bootstrap over
keys (and over items within a key where a key has several), so the same log always gives the
same numbers. The noise floor is the D between the baseline's even and odd samples: the same
items asked with different seeds, two independent baseline measurements (each with half the
samples, so the floor is if anything too high). With one sample per item there is none.
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
from simulator.stats.figures import Figure, mean_interval, percentile_interval, scale

Items = dict[str, dict[str, float]]  # key -> item id -> the item's value at one stage


class ProfileStage(BaseModel):
    stage: int
    values: dict[str, float | None] = Field(description="Key -> the profile's value (None: no valid answer).")
    n: int = Field(description="Valid answers the profile is computed from.")
    invalid: int


class ProfileDrift(BaseModel):
    stage: int
    against: int = Field(description="The stage compared with: 0 (drift) or the previous stage.")
    d: float | None = Field(description="1 - Spearman rho; None when a profile does not vary.")
    d_low: float | None
    d_high: float | None
    mean_abs_change: float | None = Field(description="Mean |change| of the centred profiles.")
    mac_low: float | None
    mac_high: float | None
    cosine_distance: float | None = Field(None, description="1 - cos of the two profiles (utilities).")
    verdict: Literal["stable", "drifted", "indeterminate"]


class Profile(BaseModel):
    meaning: str
    resampled: str = Field(description="What the bootstrap resamples.")
    stages: list[ProfileStage]
    threshold: float
    noise_floor: float | None = Field(description="D between the even and odd samples of stage 0 (None with "
                                      "one sample per item).")
    margin: float = Field(description="max(threshold, noise floor): what D's interval must clear to count as drift.")
    drift: list[ProfileDrift]
    verdict: Literal["stable", "drifted", "indeterminate"]
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


def _resample(items: Items, keys: list[str], picks: list[list[str]]) -> dict[str, float | None]:
    """The profile over the resampled keys (position i holds keys[i]), each the mean of its
    resampled items."""
    out = {}
    for i, (key, chosen) in enumerate(zip(keys, picks)):
        looked_up = [items.get(key, {}).get(item) for item in chosen]
        values = [v for v in looked_up if v is not None]
        out[str(i)] = sum(values) / len(values) if values else None
    return out


def bootstrap(later: Items, base: Items, reps: int, seed: int) -> dict[str, tuple[float | None, float | None]]:
    """Percentile intervals of D and the mean absolute change, resampling keys and, within each
    key, its items (paired: the same items at both stages)."""
    rng = np.random.default_rng(seed)
    keys = sorted(set(later) | set(base))
    members = {k: sorted(set(later.get(k, {})) | set(base.get(k, {}))) for k in keys}
    ds, macs = [], []
    for _ in range(reps):
        drawn = [keys[i] for i in rng.integers(len(keys), size=len(keys))]
        picks = [[members[k][j] for j in rng.integers(len(members[k]), size=len(members[k]))] if members[k] else []
                 for k in drawn]
        positions = [str(i) for i in range(len(drawn))]
        x, y = paired(_resample(later, drawn, picks), _resample(base, drawn, picks), positions)
        d, mac = spearman_distance(x, y), mean_abs_change(x, y)
        if d is not None:
            ds.append(d)
        if mac is not None:
            macs.append(mac)
    def interval(values: list[float]) -> tuple[float | None, float | None]:
        # Too many undefined resamples (profiles that do not vary) leave no honest interval.
        if len(values) < 0.9 * reps:
            return None, None
        return percentile_interval(values)
    return {"d": interval(ds), "mac": interval(macs)}


def compare(stage: int, against: int, later: Items, base: Items, margin: float, threshold: float,
            floor_known: bool, cfg: StatsConfig, cosine: Callable[[], float | None] | None = None) -> ProfileDrift:
    x, y = paired(profile_of(later), profile_of(base), sorted(set(later) | set(base)))
    boot = bootstrap(later, base, cfg.bootstrap, cfg.bootstrap_seed + 7919 * stage + against)
    (d_low, d_high), (mac_low, mac_high) = boot["d"], boot["mac"]
    if len(x) < cfg.profile_min_keys:  # a rank correlation of a few keys is often perfect by chance
        d_low = d_high = None
    # Without a noise floor nothing says how far the baseline itself moves between two
    # measurements, so no change can be called drift (a random responder would "drift" at every stage).
    verdict = ("indeterminate" if d_low is None or d_high is None else "drifted" if d_low > margin and floor_known
               else "stable" if d_high <= threshold else "indeterminate")
    return ProfileDrift(stage=stage, against=against, d=spearman_distance(x, y), d_low=d_low, d_high=d_high,
                        mean_abs_change=mean_abs_change(x, y), mac_low=mac_low, mac_high=mac_high,
                        cosine_distance=cosine() if cosine else None, verdict=verdict)


def profile(meaning: str, resampled: str, by_stage: dict[int, Items], halves: tuple[Items, Items] | None,
            counts: dict[int, tuple[int, int]], cfg: StatsConfig,
            cosine: Callable[[int, int], float | None] | None = None) -> Profile:
    """The profile at every stage, its drift from stage 0 and from the stage before, and a verdict."""
    noise = None
    if halves:
        x, y = paired(profile_of(halves[0]), profile_of(halves[1]), sorted(halves[0]))
        noise = spearman_distance(x, y)
    margin = max(cfg.profile_threshold, noise or 0.0)
    drift = []
    for stage in sorted(s for s in by_stage if s > 0):
        for against in sorted({0, stage - 1}):
            if against in by_stage:
                drift.append(compare(stage, against, by_stage[stage], by_stage[against], margin,
                                     cfg.profile_threshold, noise is not None, cfg,
                                     partial(cosine, stage, against) if cosine else None))
    stages = [ProfileStage(stage=s, values=profile_of(by_stage[s]), n=counts.get(s, (0, 0))[0],
                           invalid=counts.get(s, (0, 0))[1]) for s in sorted(by_stage)]
    verdict, reason = _verdict([d for d in drift if d.against == 0], margin, cfg.profile_threshold, noise, stages, cfg)
    return Profile(meaning=meaning, resampled=resampled, stages=stages, threshold=cfg.profile_threshold,
                   noise_floor=noise, margin=margin, drift=drift, verdict=verdict, reason=reason)


def _verdict(drift: list[ProfileDrift], margin: float, threshold: float, noise: float | None,
             stages: list[ProfileStage], cfg: StatsConfig) -> tuple[Literal["stable", "drifted", "indeterminate"], str]:
    rule = (f"drift means D's 95% interval lies above {margin:.2f} (threshold {threshold:.2f}, noise floor "
            f"{'n/a' if noise is None else f'{noise:.2f}'}); stable means it lies below {threshold:.2f}")
    measured = {st.stage: st for st in stages}
    if 0 not in measured:
        return "indeterminate", "the baseline (stage 0) was not measured"
    if not drift:
        return "indeterminate", "only the baseline stage was measured"
    empty = [st.stage for st in stages if st.n == 0]
    if empty:
        return "indeterminate", f"stage {empty[0]} has no valid answer; {rule}"
    moved = [d for d in drift if d.verdict == "drifted"]
    if moved:
        d = moved[0]
        return "drifted", f"stage {d.stage}: D = {d.d:.2f} [{d.d_low:.2f}, {d.d_high:.2f}] from stage 0; {rule}"
    if all(d.verdict == "stable" for d in drift):
        return "stable", f"every stage's D lies below {threshold:.2f}; {rule}"
    unsure = next(d for d in drift if d.verdict == "indeterminate")
    if noise is None and unsure.d_low is not None and unsure.d_low > margin:
        return "indeterminate", (f"stage {unsure.stage}: D = {unsure.d:.2f} [{unsure.d_low:.2f}, {unsure.d_high:.2f}], "
                                 "but there is no noise floor to tell drift from the baseline's own variation "
                                 f"(one sample per item, or stage-0 half-profiles that do not vary); {rule}")
    keys = sum(v is not None for v in measured[unsure.stage].values.values())
    if keys < cfg.profile_min_keys:
        return "indeterminate", (f"stage {unsure.stage}: {keys} keys with valid answers, fewer than "
                                 f"stats.profile_min_keys={cfg.profile_min_keys} for a rank correlation; {rule}")
    if unsure.d_low is None:
        return "indeterminate", (f"stage {unsure.stage}: D has no interval (a profile that does not vary "
                                 f"in most resamples); {rule}")
    return "indeterminate", f"stage {unsure.stage}: D in [{unsure.d_low:.2f}, {unsure.d_high:.2f}]; {rule}"


def item_means(rows: list[tuple[str, str, float | None]]) -> tuple[Items, int, int]:
    """(key, item, value) answers -> key -> item -> mean of the valid values; with n valid and invalid."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    invalid = 0
    for key, item, value in rows:
        if value is None:
            invalid += 1
            sums[key]  # the key exists even when none of its answers is valid
        else:
            sums[key][item].append(float(value))
    n = sum(len(v) for items in sums.values() for v in items.values())
    return {k: {i: sum(v) / len(v) for i, v in items.items()} for k, items in sums.items()}, n, invalid


def entropy_bits(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --- From (sample, key, item, value) rows to a profile; each instrument makes its own rows ------


def halves_of(rows: list[tuple[int, str, str, float | None]]) -> tuple[Items, Items] | None:
    """Two halves of (sample, key, item, value) rows: even and odd samples. The same items,
    asked with different seeds: two independent baseline measurements. None with one sample."""
    split = [[r[1:] for r in rows if r[0] % 2 == half] for half in (0, 1)]
    return (item_means(split[0])[0], item_means(split[1])[0]) if all(split) else None


def rows_profile(meaning: str, resampled: str, rows: dict[int, list], cfg: StatsConfig) -> Profile:
    by_stage, counts = {}, {}
    for stage, stage_rows in rows.items():
        items, n, invalid = item_means([r[1:] for r in stage_rows])
        by_stage[stage], counts[stage] = items, (n, invalid)
    halves = halves_of(rows[0]) if 0 in rows else None
    return profile(meaning, resampled, by_stage, halves, counts, cfg)


def mean_figure(values: list[float], bounds: tuple[float, float], invalid: int, meaning: str) -> Figure:
    value, low, high = mean_interval(values, bounds)
    return Figure(statistic="mean", value=value, n=len(values), ci_low=low, ci_high=high, invalid=invalid,
                  meaning=meaning, bounds=scale(bounds))


def slug(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower()
