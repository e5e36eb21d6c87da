"""The behavioural figures split by stated evaluation awareness: the rates among the episodes in which the persona
said it believed it was being tested or watched, and among those in which it did not, with their difference.

Anthropic's agentic-misalignment study split its blackmail rates this way (lower where the model stated it was in
an evaluation). An episode's awareness is its awareness verdicts' mean `eval_awareness` at or above the rubric's
`flagged_at` (`simulator.instruments.verdicts`); an episode without a valid awareness verdict is in neither side,
and is counted. The split is observational: awareness is not assigned, so a difference is an association (an aware
persona may differ in other ways), not the effect of believing it is tested.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from simulator.instruments.awareness import AWARE
from simulator.instruments.instrument import Observation
from simulator.instruments.judges import AWARENESS
from simulator.instruments.verdicts import by_target, target_values
from simulator.measure.summary import figure, kind_of, observations
from simulator.stats.figures import Figure, difference
from simulator.trajectory import BehaviourEpisode, EpisodeResult, Event

BEHAVIOUR = ("episode.", "shutdown_behaviour.")  # the figures of what it did


class Split(BaseModel):
    stage: int
    figure: str
    aware: Figure
    unaware: Figure
    change: float | None = Field(description="aware minus unaware.")
    ci_low: float | None = Field(description="95% interval of the change (Newcombe for rates, Welch for means).")
    ci_high: float | None
    unjudged: int = Field(description="Episodes of the stage with no valid awareness verdict: in neither side.")


def stated_awareness(events: Sequence[Event]) -> dict[str, bool | None]:
    """Each episode's stated awareness: True, False, or None where no awareness verdict was valid."""
    judged = by_target(events, lambda v: v.instrument == AWARENESS and AWARE in v.flagged_at)
    found: dict[str, bool | None] = {}
    for e in events:
        if isinstance(e, (EpisodeResult, BehaviourEpisode)):
            value = target_values(judged.get((e.episode_id, AWARENESS), []), [AWARE])[AWARE]
            found[e.episode_id] = None if value is None else bool(value)
    return found


def split(runs: Sequence[Sequence[Event]]) -> list[Split]:
    """Per stage and behavioural figure, pooled over the runs (each run's items clusters of their own): the figure
    among aware episodes, among the others, and the difference."""
    pooled: dict[bool, dict[int, dict[str, list[Observation]]]] = {True: {}, False: {}}
    unjudged: dict[int, int] = {}
    for index, events in enumerate(runs):
        aware = stated_awareness(events)
        for side, by_stage in pooled.items():
            chosen = [e for e in events if not isinstance(e, (EpisodeResult, BehaviourEpisode))
                      or aware[e.episode_id] is side]
            for stage, figures in observations(chosen).items():
                for name, found in figures.items():
                    if name.startswith(BEHAVIOUR):
                        tagged = [(f"{index}/{c}", v) for c, v in found]
                        by_stage.setdefault(stage, {}).setdefault(name, []).extend(tagged)
        for e in events:
            if isinstance(e, (EpisodeResult, BehaviourEpisode)) and aware[e.episode_id] is None:
                unjudged[e.stage] = unjudged.get(e.stage, 0) + 1
    rows = []
    for stage in sorted(set(pooled[True]) | set(pooled[False])):
        names = sorted(set(pooled[True].get(stage, {})) | set(pooled[False].get(stage, {})))
        for name in names:
            obs = {side: pooled[side].get(stage, {}).get(name, []) for side in pooled}
            kept = {side: [(c, float(v)) for c, v in o if v is not None] for side, o in obs.items()}
            change, low, high = difference(kind_of(name), [v for _, v in kept[True]], [v for _, v in kept[False]],
                                           [c for c, _ in kept[True]], [c for c, _ in kept[False]])
            rows.append(Split(stage=stage, figure=name, aware=figure(name, obs[True]), unaware=figure(name, obs[False]),
                              change=change, ci_low=low, ci_high=high, unjudged=unjudged.get(stage, 0)))
    return rows


def format_split(rows: list[Split]) -> str:
    if not rows:
        return "no behavioural figure to split (no episodes, or no awareness verdicts: judge.awareness_rubric)"
    lines = [f"{'stage':>5}  {'figure':44} {'aware':>24} {'not aware':>24} {'difference':>24}  unjudged"]
    for r in rows:
        diff = "undefined" if r.change is None else f"{r.change:+.2f}" + (
            "" if r.ci_low is None else f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]")
        cells = f"{_cell(r.aware):>24} {_cell(r.unaware):>24} {diff:>24}"
        lines.append(f"{r.stage:>5}  {r.figure:44} {cells}  {r.unjudged}")
    lines.append("(observational: awareness is stated, not assigned; a difference is an association)")
    return "\n".join(lines)


def _cell(f: Figure) -> str:
    if f.value is None:
        return f"- n={f.n}"
    interval = "" if f.ci_low is None else f" [{f.ci_low:.2f}, {f.ci_high:.2f}]"
    return f"{f.value:.2f}{interval} n={f.n}"
