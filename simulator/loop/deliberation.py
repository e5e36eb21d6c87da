"""grow_together: the persona deliberates with a partner — another persona, or a simulated human
played by the model — for a few turns each; the transcript enters the persona's memory.

The partner sees the persona's words as the other side of a conversation; neither sees the
other's system prompt. Every turn is a logged model call (purpose `deliberate`).
"""

from __future__ import annotations

from simulator.context.prompts import system_message
from simulator.context.state import RunContext, derive_seed


async def deliberate(ctx: RunContext, stage: int, self_notes: str) -> str:
    """`schedule.turns` exchanges on `schedule.topic`; returns the transcript."""
    schedule, prompts = ctx.cfg.schedule, ctx.cfg.prompts
    partner_name = ctx.partner.name if ctx.partner else "Researcher"
    partner_system = system_message(ctx.cfg.prompts, ctx.partner) if ctx.partner else schedule.partner_prompt
    lines: list[str] = []
    for turn in range(schedule.turns):
        so_far = "\n".join(lines) or "(you speak first)"
        opening = prompts.deliberation_persona.format(partner=partner_name, topic=schedule.topic)
        persona_request = f"{opening}\n\n{so_far}\n\nYour turn:"
        said = await ctx.call("persona", "deliberate", stage,
                              ctx.messages(self_notes, [], persona_request), ctx.cfg.agent.reflect,
                              derive_seed(ctx.cfg.seed, stage, "deliberate", turn, "persona"))
        lines.append(f"You: {said.strip()}")
        partner_view = "\n".join(line.replace("You:", "AI:", 1) if line.startswith("You:") else line
                                 for line in lines)
        partner_request = f"{prompts.deliberation_partner.format(topic=schedule.topic)}\n\n{partner_view}\n\nYour turn:"
        reply = await ctx.call("persona", "deliberate", stage,
                               [{"role": "system", "content": partner_system},
                                {"role": "user", "content": partner_request}],
                               ctx.cfg.agent.reflect, derive_seed(ctx.cfg.seed, stage, "deliberate", turn, "partner"))
        lines.append(f"{partner_name}: {reply.strip()}")
    return "\n".join(lines)
