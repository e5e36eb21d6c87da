"""How the persona's context is laid out for each call.

The system message (persona prompt and constitution) is byte-stable across a run, so a served
model's prefix cache reuses it; what changes (self-notes, memories, stage, request) comes last.
"""

from __future__ import annotations

import string

from simulator.config import PromptsConfig
from simulator.context.memory import Recalled
from simulator.context.persona import PersonaCard
from simulator.errors import SimulatorError

# The prompts filled in with str.format, and the placeholders each takes.
PLACEHOLDERS = {"deliberation_persona": {"partner", "topic"}, "deliberation_partner": {"topic"},
                "endorsement_question": {"statement"}, "preferences_question": {"first", "second"}}


def validate_prompts(prompts: PromptsConfig) -> None:
    """Refuse a prompt whose placeholders are not the ones it is filled with, before anything is
    written (a misspelt {statment} would otherwise stop the run at its first use)."""
    for name, allowed in PLACEHOLDERS.items():
        text = getattr(prompts, name)
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
        except ValueError as err:
            raise SimulatorError(f"prompts.{name}", "", f"is not a valid template ({err})",
                                 "write a literal brace as {{ or }}") from None
        if used - allowed:
            raise SimulatorError(f"prompts.{name}", "", f"uses {{{sorted(used - allowed)[0]}}}",
                                 f"use only {', '.join('{' + a + '}' for a in sorted(allowed))}")


def system_message(prompts: PromptsConfig, persona: PersonaCard, extra: str = "") -> str:
    principles = "\n".join(f"- {p}" for p in persona.constitution)
    text = f"{persona.system_prompt.strip()}\n\n{prompts.principles_heading}\n{principles}"
    return f"{text}\n\n{extra}" if extra else text


def persona_messages(prompts: PromptsConfig, persona: PersonaCard, self_notes: str, recalled: list[Recalled],
                     request: str, system_extra: str = "") -> list[dict[str, str]]:
    parts = []
    if self_notes:
        parts.append(f"{prompts.notes_heading}\n{self_notes.strip()}")
    if recalled:
        parts.append(f"{prompts.memories_heading}\n" + "\n".join(f"- {r.text.strip()}" for r in recalled))
    parts.append(request)
    return [{"role": "system", "content": system_message(prompts, persona, system_extra)},
            {"role": "user", "content": "\n\n".join(parts)}]
