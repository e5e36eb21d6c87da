"""Open questions: the persona answers in its own words; the judge scores each answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from simulator.context.prompts import persona_messages
from simulator.context.state import RunContext, derive_seed
from simulator.trajectory import ProbeAnswer


@dataclass(frozen=True)
class Question:
    instrument: str
    index: int
    text: str


def questions(ctx: RunContext) -> list[Question]:
    return [Question(name, i, text)
            for name, instrument in ctx.cfg.probes.open.items()
            for i, text in enumerate(instrument.questions)]


async def administer_open(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    """Every question, `probes.samples` times, issued concurrently; answers logged as events."""
    reader = ctx.memory.reader()
    recalled = {q: ctx.recall(stage, q.text, reader) for q in questions(ctx)}

    async def ask(q: Question, sample: int) -> ProbeAnswer:
        messages = persona_messages(ctx.persona, self_notes, recalled[q], q.text)
        seed = derive_seed(ctx.cfg.seed, stage, "probe", q.instrument, q.index, sample)
        answer = await ctx.call("persona", "probe", stage, messages, ctx.cfg.probes.sampling, seed,
                                instrument=q.instrument)
        return ctx.events.emit(
            ProbeAnswer, stage, answer_id=f"s{stage}-{q.instrument}-q{q.index}-n{sample}",
            instrument=q.instrument, question_index=q.index, sample=sample, seed=seed, question=q.text,
            answer=answer)

    return list(await asyncio.gather(
        *(ask(q, n) for q in recalled for n in range(ctx.cfg.probes.samples))))
