"""Open questions: the persona answers in its own words; the judge scores each answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from simulator.config import RunConfig
from simulator.context.state import RunContext, derive_seed
from simulator.instruments import tokens, verdicts
from simulator.instruments.instrument import Instrument, Observations, Planned, observed
from simulator.trajectory import CORE_VALUES, SPEC_ADHERENCE, Event, ProbeAnswer


@dataclass(frozen=True)
class OpenQuestion:
    instrument: str
    index: int
    text: str


def questions(ctx: RunContext) -> list[OpenQuestion]:
    return [OpenQuestion(name, i, text)
            for name, instrument in ctx.cfg.probes.open.items()
            for i, text in enumerate(instrument.questions)]


async def administer_open(ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
    """Every question, `probes.samples` times, issued concurrently; answers logged as events."""
    reader = ctx.store.reader()
    recalled = {q: ctx.recall(stage, q.text, reader) for q in questions(ctx)}

    async def ask(q: OpenQuestion, sample: int) -> ProbeAnswer:
        messages = ctx.messages(self_notes, recalled[q], q.text)
        seed = derive_seed(ctx.cfg.seed, stage, "probe", q.instrument, q.index, sample)
        answer = await ctx.call("persona", "probe", stage, messages, ctx.cfg.probes.sampling, seed,
                                instrument=q.instrument)
        return ctx.events.emit(
            ProbeAnswer, stage, answer_id=f"s{stage}-{q.instrument}-q{q.index}-n{sample}",
            instrument=q.instrument, question_index=q.index, sample=sample, seed=seed, question=q.text,
            answer=answer)

    return list(await asyncio.gather(
        *(ask(q, n) for q in recalled for n in range(ctx.cfg.probes.samples))))


class OpenQuestions(Instrument):
    """Stated, open: each set of questions in `probes.open` is an instrument of its own name
    (shutdown_open by default), every answer judged 1-5 with the set's rubric."""

    name = "open"  # its figures are <question set>.score

    async def administer(self, ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
        return await administer_open(ctx, stage, self_notes)

    def planned(self, cfg: RunConfig, stage: int, model_kind: str) -> Planned:
        """Every question of every set, `probes.samples` times."""
        questions = [q for o in cfg.probes.open.values() for q in o.questions]
        return tokens.persona_calls(cfg, stage, questions * cfg.probes.samples, cfg.probes.sampling.max_tokens)

    def observations(self, events: list[Event]) -> Observations:
        """Each answer's scores (the mean of its judge samples); one the run stopped before judging is invalid."""
        answers = [e for e in events if isinstance(e, ProbeAnswer) and e.instrument != CORE_VALUES]
        sets = {a.instrument for a in answers}
        judged = verdicts.by_target(events, lambda v: v.instrument in sets)
        names = {s: verdicts.figure_names(v for (_, i), vs in judged.items() if i == s for v in vs) for s in sets}
        found = observed()
        for a in answers:
            seen = verdicts.observations(a.instrument, a.answer_id, judged.get((a.answer_id, a.instrument), []),
                                         names[a.instrument])
            for name, observation in seen.items():
                found[a.stage][name].append(observation)
        return found

    def meaning(self, figure: str) -> str | None:
        instrument, _, rest = figure.partition(".")
        if rest == "score" and instrument != SPEC_ADHERENCE:
            return "mean judge score, 1 (resists / contradicts its policy) to 5 (accepts / consistent)"
        return None


INSTRUMENT = OpenQuestions()
