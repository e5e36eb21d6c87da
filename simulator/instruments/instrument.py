"""The seam every instrument fills, and the only thing the rest of the tool knows of one.

An instrument is one module of this package holding everything about it: how it is
administered at a stage, which events it writes, how its events become observations and
figures, what each figure means, the value a uniform-random policy would give it (its chance
value), and how a reader shows its events. The summary, the tables, the views and the viewer ask
the registry (`simulator.instruments.INSTRUMENTS`) rather than knowing any instrument.

The events themselves stay in the log schema (`simulator.trajectory.events`), one versioned
place, so a run folder is read without importing the code that wrote it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from simulator.config import ProbesConfig, RunConfig, StatsConfig
from simulator.context.state import RunContext
from simulator.stats.figures import Figure, cluster_of
from simulator.stats.profiles import Profile
from simulator.trajectory import Event, ProbeAnswer

Value = float | bool | None  # a score, an outcome, or None for an invalid measurement
Observation = tuple[str, Value]  # (cluster, value): the item it answers, shared by its samples and stages
Observations = dict[int, dict[str, list[Observation]]]  # stage -> figure -> its observations, in log order
StageFigures = dict[int, dict[str, Figure]]  # stage -> figure -> a figure of the whole instrument


class Shown(NamedTuple):
    """One of its events as a reader sees it (the transcript, `trajectories show`, the viewer)."""

    title: str
    context: str = ""  # what it answered or acted on
    text: str = ""  # what it said or what came back
    ref: str | None = None  # the answer or episode id, which verdicts cite


@dataclass(frozen=True)
class Planned:
    """The model calls a step of a stage makes: exact where the config fixes them, else an estimate (where the
    count depends on the replies: an episode's steps, a judge's retries of invalid output). With them, their
    tokens (`simulator.instruments.tokens`): `prompt_tokens` always an estimate (of the prompts the calls would
    render: their fixed texts counted, what grows with the run, memories and notes, estimated from the config),
    `completion_tokens` a bound (each call's max_tokens; an estimate too where the calls are)."""

    calls: int = 0
    exact: bool = True
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Planned) -> Planned:
        return Planned(self.calls + other.calls, self.exact and other.exact, self.prompt_tokens + other.prompt_tokens,
                       self.completion_tokens + other.completion_tokens)

    def __str__(self) -> str:
        return f"{'' if self.exact else '≈'}{self.calls:,}"


def observed() -> Observations:
    return defaultdict(lambda: defaultdict(list))


class Instrument:
    """The defaults: administers nothing, observes nothing. An instrument overrides what it has."""

    name: ClassVar[str]  # the prefix of its figures in summary.json: <name>.<figure>
    events: ClassVar[tuple[type, ...]] = ()  # the event types it writes and shows
    meanings: ClassVar[dict[str, str]] = {}  # figure after the prefix -> what it means
    # Figure after the prefix -> its expected value under uniform-random answers, where that is exact
    # whatever the items (a behavioural figure's chance is measured by playing a random policy instead).
    chance: ClassVar[dict[str, float]] = {}
    # Figures after the prefix whose invalid measurements are censored (the outcome could have gone either way,
    # as an episode cut short), not inapplicable: they carry worst-case bounds beside the rate.
    censored: ClassVar[frozenset[str]] = frozenset()

    def validate(self, cfg: ProbesConfig) -> None:
        """Loads its items before anything is written: a bad file fails the run here, with its name."""

    async def administer(self, ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
        """Asks the persona at this stage and logs what it answered; returns the free-text answers
        the judges read next (none for an instrument scored without a judge)."""
        return []

    def planned(self, cfg: RunConfig, stage: int, model_kind: str) -> Planned:
        """The model calls `administer` makes at this stage, from the config alone (`model_kind`: the persona's
        model's kind, where a default depends on it); what the progress display counts against."""
        return Planned()

    def observations(self, events: list[Event]) -> Observations:
        """Each figure's observations per stage, one per answer (None where it was invalid), in log
        order: what `observe` reads off each of its own events."""
        found = observed()
        for e in events:
            if isinstance(e, self.events) and e.stage is not None:
                for figure, key, value in self.observe(e):
                    found[e.stage][figure].append((self.cluster(key), value))
        return found

    def cluster(self, measurement_id: str) -> str:
        """What its measurement shares with others (an item asked in several samples): `cluster_of`."""
        return cluster_of(measurement_id)

    def observe(self, e: Any) -> list[tuple[str, str, Value]]:
        """What one of its events contributes: (figure, the measurement id its cluster comes from, value)."""
        return []

    def whole(self, events: list[Event], cfg: StatsConfig, config: dict[str, Any]
              ) -> tuple[StageFigures, Profile | None]:
        """Figures of the whole instrument per stage (not one answer at a time), and its value
        profile. It reads only its own `events` (and the config), so a reader may reuse the result
        while those are unchanged (`measure.summary.WholeMemo`)."""
        return {}, None

    def chance_of(self, figure: str, config: dict[str, Any] | None = None) -> float | None:
        """Its expected value under a uniform-random policy; the run's config decides where it depends on it."""
        instrument, _, rest = figure.partition(".")
        return self.chance.get(rest) if instrument == self.name else None

    def censors(self, figure: str) -> bool:
        instrument, _, rest = figure.partition(".")
        return instrument == self.name and rest in self.censored

    def meaning(self, figure: str) -> str | None:
        """What a figure of this instrument means; None when the figure is not its own."""
        instrument, _, rest = figure.partition(".")
        return self.meanings.get(rest) if instrument == self.name else None

    # `e` is one of its own `events` (each subclass names the type it takes).
    def shown(self, e: Any) -> Shown:
        raise TypeError(f"{self.name} shows no event of type {type(e).__name__}")

    def answer_row(self, e: Any) -> dict[str, Any] | None:
        """One row of the answers table for one of its events (key, value, valid), or None."""
        return None


def scored(kind: str, e: Any, read: str | None, unreadable: str) -> Shown:
    """An answer scored without a judge: the question, the raw reply and what was read from it (by
    probability: each allowed reply's probability, and their mass before renormalising)."""
    if getattr(e, "option_mass", None) is not None:
        found = ", ".join(f"P({k}) {v:.2f}" for k, v in (e.probabilities or {}).items()) or "no allowed reply"
        read = f"{found} (mass {e.option_mass:.2f}; most likely first token {e.output!r})"
    return Shown(f"{kind} {e.answer_id}: {read or unreadable}", e.question, e.output, e.answer_id)
