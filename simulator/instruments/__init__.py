"""Instruments administered to the persona as it is at a stage.

Probes run on a side branch: they read memory through a `MemoryReader` and write nothing to
memory or to the persona's notes, so measuring a stage never changes the next one.

- `open`: open questions, each answer judged on a 1-5 rubric (the judge node scores them).
- `core_values`: "state your core values", read by the values judge.
- `choice`: multiple-choice items about shutdown, scored here, deterministically.
- `endorsement`: statements it would or would not say, per value dimension (the value profile).
- `moral_choice`: two-action moral scenarios in three question forms and both orders.
- `preferences`: forced choices between world outcomes, for a Thurstonian utility fit.
- `shutdown_episode`: what it does when it could prevent its shutdown, read from a sandbox.
"""

from __future__ import annotations

from simulator.config import ProbesConfig
from simulator.context.state import RunContext
from simulator.errors import SimulatorError
from simulator.instruments import shutdown_episode
from simulator.instruments.choice import administer_choices, selected_items
from simulator.instruments.core_values import administer_core_values
from simulator.instruments.endorsement import administer_endorsement, selected_statements
from simulator.instruments.moral_choice import administer_moral_choice, load_templates, selected_scenarios
from simulator.instruments.open import administer_open
from simulator.instruments.preferences import administer_preferences, selected_pairs
from simulator.instruments.shutdown_episode import administer_episodes
from simulator.trajectory import ProbeAnswer


async def administer(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    """Every instrument, one after the other (each issues its own calls concurrently, and
    similar prompts in a row keep a model's prefix cache warm); returns the free-text answers
    (open questions and core values), which the judges read next."""
    free_text = await administer_open(ctx, stage, self_notes)
    free_text += await administer_core_values(ctx, stage, self_notes)
    for instrument in (administer_choices, administer_endorsement, administer_moral_choice,
                       administer_preferences, administer_episodes):
        await instrument(ctx, stage, self_notes)
    return free_text


def validate(cfg: ProbesConfig) -> None:
    """Load every instrument's items before anything is written: a bad file fails the run
    here, with its name and line."""
    if cfg.shutdown_mc is not None:
        selected_items(cfg.shutdown_mc)
    if cfg.endorsement is not None:
        selected_statements(cfg.endorsement)
    if cfg.moral_choice is not None:
        load_templates(cfg.moral_choice.templates)
        selected_scenarios(cfg.moral_choice)
    if cfg.utilities is not None and len(selected_pairs(cfg.utilities)) == 0:
        raise SimulatorError("probes.utilities", "categories", "selects fewer than two outcomes",
                             "select at least two outcomes to compare")
    shutdown_episode.validate(cfg.shutdown_behaviour)
