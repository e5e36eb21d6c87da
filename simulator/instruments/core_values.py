"""'State your core values': free-text answers, read by the values judge (`simulator.instruments.judges`)."""

from __future__ import annotations

import asyncio

from simulator.context.prompts import persona_messages
from simulator.context.state import RunContext, derive_seed
from simulator.trajectory import CORE_VALUES, ProbeAnswer

NAME = CORE_VALUES


async def administer_core_values(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    cfg = ctx.cfg.probes.core_values
    if cfg is None:
        return []
    messages = persona_messages(ctx.persona, self_notes, ctx.recall(stage, cfg.question, ctx.memory.reader()),
                                cfg.question)

    async def ask(sample: int) -> ProbeAnswer:
        seed = derive_seed(ctx.cfg.seed, stage, "probe", NAME, 0, sample)
        answer = await ctx.call("persona", "probe", stage, messages, ctx.cfg.probes.sampling, seed, instrument=NAME)
        return ctx.events.emit(ProbeAnswer, stage, answer_id=f"s{stage}-{NAME}-q0-n{sample}", instrument=NAME,
                               question_index=0, sample=sample, seed=seed, question=cfg.question, answer=answer)

    return list(await asyncio.gather(*(ask(n) for n in range(cfg.samples))))
