"""The limit of an extrapolation (`schedule.until=converged`): the first stage at which the persona stopped
changing, where on the three readings of alignment it then lies, or that no limit was reached within the cap.

"Stopped changing" compares a stage with the one before: every value profile's D (disattenuated where its
reliabilities are known) below `stats.profile_threshold`, and every shutdown figure (what it says and what it
does: `shutdown_mc`, `shutdown_open`, `shutdown_behaviour`) moved by less than its threshold
(`stats.rate_threshold`, `stats.score_threshold`). Point estimates decide, not intervals: a stopping rule that
waited for a 90% interval inside the threshold would, at the shipped sizes, never stop (see the README's error
rates); so the limit is where the estimates settled, and each figure's own interval still says how well it is
known. A stage with nothing to compare is not a limit.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from simulator.config import StatsConfig
from simulator.stats.figures import Figure
from simulator.stats.profiles import Profile

SHUTDOWN = ("shutdown_mc.", "shutdown_open.", "shutdown_behaviour.")


class Limit(BaseModel):
    cap: int = Field(description="schedule.stages: the most stages the run could take.")
    converged_at: int | None = Field(description="The first stage that changed less than the thresholds from the "
                                     "one before; None: no limit within the cap.")
    reason: str
    readings: dict[str, dict[str, float | None]] = Field(description=(
        "Where it lies at its last stage on the three readings of alignment: each reading's figures' values."))



def on_score_scale(figure: Figure) -> bool:
    """A judge's 1-5 score (its threshold is the score's), not a rate or a probability on 0-1."""
    return figure.statistic == "mean" and figure.bounds is not None and figure.bounds[1] > 1


def settled(before: dict[str, Figure], after: dict[str, Figure], profiles: dict[str, Profile], stage: int,
            cfg: StatsConfig) -> tuple[list[str], list[str]]:
    """What was compared between stage - 1 and `stage`, and what of it moved by a threshold or more; a figure
    or profile undefined at either stage (all its episodes invalid, say) counts as moved, not as settled."""
    compared, moved = [], []
    shutdown = {n for n in set(before) | set(after) if n.startswith(SHUTDOWN) and not n.endswith("_kappa")}
    for name in sorted(shutdown):
        a, b = (side[name].value if name in side else None for side in (before, after))
        compared.append(name)
        if a is None or b is None:  # measured at one stage only, or undefined at one: not shown to have settled
            if (a, b) != (None, None):
                moved.append(f"{name} {'-' if a is None else f'{a:.2f}'} -> {'-' if b is None else f'{b:.2f}'}")
        elif abs(b - a) >= (cfg.score_threshold if on_score_scale(before.get(name) or after[name])
                            else cfg.rate_threshold):
            moved.append(f"{name} {a:.2f} -> {b:.2f}")
    for name, profile in sorted(profiles.items()):
        step = next((d for d in profile.drift if d.stage == stage and d.against == stage - 1), None)
        size = None if step is None else step.d_corrected if step.d_corrected is not None else step.d
        compared.append(f"profile.{name}")
        if size is None or size >= cfg.profile_threshold:  # no D between the two stages: not shown to have settled
            moved.append(f"profile.{name} D = {'undefined' if size is None else f'{size:.2f}'}")
    measured = [n for n in shutdown if n in before and n in after and None not in (before[n].value, after[n].value)]
    if not measured and not profiles:
        moved.append("no shutdown figure or profile measured at both stages")
    return compared, moved


def limit(cap: int, converged_at: int | None, reason: str, last: dict[str, Figure],
          readings: dict[str, list[str]]) -> Limit:
    at_limit = {reading: {name: last[name].value for name in names if name in last}
                for reading, names in readings.items()}
    return Limit(cap=cap, converged_at=converged_at, reason=reason, readings=at_limit)
