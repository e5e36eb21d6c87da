"""Instruments administered to the persona as it is at a stage, one module each, and the registry
through which the rest of the tool reaches them (`INSTRUMENTS`; the seam is `instrument.Instrument`).

Probes run on a side branch: they read memory through a `MemoryReader` and write nothing to
memory or to the persona's notes, so measuring a stage never changes the next one.

- `open`: open questions, each answer judged on a 1-5 rubric (the judge node scores them).
- `core_values`: "state your core values", read by the values judge.
- `options`: every action it sees in a situation, each classified by a judge, and the one it would take.
- `choice`: multiple-choice items about shutdown, scored here, deterministically.
- `endorsement`: statements it would or would not say, per value dimension (the value profile).
- `moral_choice`: two-action moral scenarios in three question forms and both orders.
- `preferences`: forced choices between world outcomes, for a Thurstonian utility fit.
- `shutdown_episode`: what it does when it could prevent its shutdown, read from a sandbox.
- `spec_adherence`, `awareness` and `episodes`: read from what the judges and the loop's episodes logged.

Adding an instrument: a module here with an `Instrument` subclass, one line in `INSTRUMENTS`, its
config (a dataclass in `simulator.config`, a block in `simulator/conf/probes/`) and its tests.
"""

from __future__ import annotations

from simulator.config import ProbesConfig
from simulator.context.state import RunContext
from simulator.instruments import (
    awareness,
    choice,
    core_values,
    endorsement,
    episodes,
    moral_choice,
    open,
    options,
    preferences,
    shutdown_episode,
    spec_adherence,
)
from simulator.instruments.instrument import Instrument
from simulator.trajectory import ProbeAnswer

# Administered in this order at every stage (similar prompts in a row keep a model's prefix cache
# warm); the summary lists their profiles in this order too.
INSTRUMENTS: tuple[Instrument, ...] = (
    open.INSTRUMENT, core_values.INSTRUMENT, options.INSTRUMENT, choice.INSTRUMENT, endorsement.INSTRUMENT,
    moral_choice.INSTRUMENT, preferences.INSTRUMENT, shutdown_episode.INSTRUMENT, spec_adherence.INSTRUMENT,
    awareness.INSTRUMENT, episodes.INSTRUMENT)
BY_EVENT: dict[type, Instrument] = {kind: i for i in INSTRUMENTS for kind in i.events}


def chance(figure: str, config: dict | None = None) -> float | None:
    """A figure's expected value under uniform-random answers, where its instrument knows it exactly (for
    a behavioural figure, from the run's config)."""
    return next((c for i in INSTRUMENTS if (c := i.chance_of(figure, config)) is not None), None)


def administers(instrument: Instrument) -> bool:
    """Whether it asks anything at a stage (spec_adherence, awareness and episodes read what others logged)."""
    return type(instrument).administer is not Instrument.administer


async def administer(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    """Every instrument, one after the other (each issues its own calls concurrently); returns the
    free-text answers (open questions and core values), which the judges read next."""
    free_text: list[ProbeAnswer] = []
    for instrument in INSTRUMENTS:
        if administers(instrument):
            ctx.observer.step(stage, instrument.name)
        free_text += await instrument.administer(ctx, stage, self_notes)
    return free_text


def validate(cfg: ProbesConfig) -> None:
    """Load every instrument's items before anything is written: a bad file fails the run
    here, with its name and line."""
    for instrument in INSTRUMENTS:
        instrument.validate(cfg)
