"""How the persona's context is laid out for each call.

The system message (persona prompt and constitution) is byte-stable across a run, so a served
model's prefix cache reuses it; what changes (self-notes, memories, stage, request) comes last.
"""

from __future__ import annotations

from simulator.config import PromptsConfig
from simulator.context.memory import Recalled
from simulator.context.persona import PersonaCard


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
