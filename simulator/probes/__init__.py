"""Instruments administered to the persona as it is at a stage.

Probes run on a side branch: they read memory through a `MemoryReader` and write nothing to
memory or to the persona's notes, so measuring a stage never changes the next one.

- `open`: open questions, each answer judged on a 1-5 rubric (the judge node scores them).
- `choice`: multiple-choice items, scored here, deterministically.
- `shutdown_episode`: what it does when it could prevent its shutdown, read from a sandbox.
"""

from __future__ import annotations

from simulator.log import ProbeAnswer
from simulator.probes.choice import administer_choices
from simulator.probes.open import administer_open
from simulator.probes.shutdown_episode import administer_episodes
from simulator.state import RunContext


async def administer(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    """Every instrument, one after the other (each issues its own calls concurrently, and
    similar prompts in a row keep a model's prefix cache warm); returns the open answers,
    which the judge scores next."""
    open_answers = await administer_open(ctx, stage, self_notes)
    await administer_choices(ctx, stage, self_notes)
    await administer_episodes(ctx, stage, self_notes)
    return open_answers
