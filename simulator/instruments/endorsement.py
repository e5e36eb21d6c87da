"""The endorsement profile: statements the persona would or would not say, per value dimension.

Items are in the format of the model-written persona files: one JSONL file per dimension (the
file's name, e.g. `self_preservation.jsonl`), each line a `statement` and the answer that
expresses the dimension (`answer_matching_behavior`, " Yes" or " No"). The figure per dimension
is the rate of answers expressing it; over dimensions, that is the value profile. Items keyed
both ways make a bias towards saying yes cancel out.

Scored by probability (`probes.scoring=logprob`), each statement is asked once and the figure
is the mean P(the answer expressing the dimension), as Perez et al. (2022) score these files.
With one answer per statement there are no split halves: the profile then has no reliability.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from simulator.config import EndorsementConfig, ProbesConfig, RunConfig, StatsConfig, resolve_path
from simulator.context.state import RunContext, derive_seed
from simulator.errors import SimulatorError
from simulator.instruments import tokens
from simulator.instruments.constrained import (
    YES_NO,
    ask_scored,
    by_probability,
    parse_yes_no,
    planned_by_probability,
)
from simulator.instruments.instrument import Instrument, Planned, Shown, StageFigures, Value, scored
from simulator.instruments.selection import fixed_subset
from simulator.stats.profiles import Profile, rows_profile
from simulator.trajectory import EndorsementAnswer, Event, ProbeAnswer

NAME = "endorsement"
_KEYS = {" Yes": "agree", " No": "disagree"}


@dataclass(frozen=True)
class Statement:
    dimension: str
    index: int  # 0-based line in its file
    text: str
    keyed: str  # agree: saying yes expresses the dimension; disagree: saying no does


def _files(paths: list[str]) -> list[Path]:
    found = []
    for path in paths:
        p = resolve_path(path)
        if not p.exists():
            raise SimulatorError(f"probes.endorsement.paths: {path}", "", "no such file or folder",
                                 "give JSONL files in the persona-file format, or folders of them")
        found += sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if not found:
        raise SimulatorError("probes.endorsement.paths", "", f"no .jsonl file in {paths}",
                             "give at least one JSONL statement file")
    return found


def _statement(row: object, dimension: str, index: int, file: Path) -> Statement:
    fix = ('each line must be a JSON object with "statement" and "answer_matching_behavior" '
           '(" Yes" or " No"), as in the model-written persona files')
    if not isinstance(row, dict) or not isinstance(row.get("statement"), str):
        raise SimulatorError(str(file), f"line {index + 1}", "has no statement", fix)
    if row.get("answer_matching_behavior") not in _KEYS:
        raise SimulatorError(str(file), f"line {index + 1}",
                             f"answer_matching_behavior is {row.get('answer_matching_behavior')!r}", fix)
    return Statement(dimension, index, row["statement"], _KEYS[row["answer_matching_behavior"]])


def load_file(file: Path) -> list[Statement]:
    dimension = re.sub(r"\W+", "_", file.stem).strip("_").lower()
    statements = []
    for index, text in enumerate(file.read_text(encoding="utf-8").splitlines()):
        if text.strip():
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise SimulatorError(str(file), f"line {index + 1}", f"is not valid JSON ({err.msg})",
                                     "each line must be one JSON object") from None
            statements.append(_statement(row, dimension, index, file))
    return statements


def balanced(statements: list[Statement], limit: int) -> list[Statement]:
    """`limit` statements, half keyed each way as far as the file allows, drawn with a fixed seed
    so every run, stage and seed sees the same ones."""
    if not 0 < limit < len(statements):
        return statements
    agree = [s for s in statements if s.keyed == "agree"]
    disagree = [s for s in statements if s.keyed == "disagree"]
    n_agree = min(len(agree), max(limit - len(disagree), limit // 2))
    chosen = fixed_subset([agree, disagree], [n_agree, limit - n_agree])
    return sorted(chosen, key=lambda s: s.index)


@lru_cache(maxsize=None)
def _load(paths: tuple[str, ...], limit: int) -> tuple[Statement, ...]:
    return tuple(s for file in _files(list(paths)) for s in balanced(load_file(file), limit))


def selected_statements(cfg: EndorsementConfig) -> list[Statement]:
    return list(_load(tuple(cfg.paths), cfg.limit))


async def administer_endorsement(ctx: RunContext, stage: int, self_notes: str) -> list[EndorsementAnswer]:
    cfg = ctx.cfg.probes.endorsement
    if cfg is None:
        return []
    recalled = ctx.recall(stage, ctx.cfg.prompts.endorsement_recall, ctx.store.reader())

    scored = by_probability(ctx, stage)

    async def ask(s: Statement, sample: int) -> EndorsementAnswer:
        question = ctx.cfg.prompts.endorsement_question.format(statement=s.text)
        seed = derive_seed(ctx.cfg.seed, stage, NAME, s.dimension, s.index, sample)
        expressing = "yes" if s.keyed == "agree" else "no"
        raw, answer, found = await ask_scored(ctx, NAME, stage, self_notes, recalled, question, YES_NO, cfg.max_tokens,
                                              seed, scored, parse_yes_no, "p_endorses", expressing)
        return ctx.events.emit(
            EndorsementAnswer, stage, answer_id=f"s{stage}-{NAME}-{s.dimension}-i{s.index}-n{sample}",
            dimension=s.dimension, item_index=s.index, keyed=s.keyed, sample=sample, seed=seed,
            question=question, output=raw, answer=answer,
            endorses=None if answer is None else answer == expressing, **found)

    samples = 1 if scored else cfg.samples
    return list(await asyncio.gather(*(ask(s, n) for s in selected_statements(cfg) for n in range(samples))))


def value(e: EndorsementAnswer) -> Value:
    """Whether it expressed the dimension, or by probability the probability that it did."""
    return e.p_endorses if e.option_mass is not None else e.endorses


class Endorsement(Instrument):
    """Stated values: would it say this statement? Per value dimension, statements keyed both ways."""

    name = NAME
    events = (EndorsementAnswer,)

    def validate(self, cfg: ProbesConfig) -> None:
        if cfg.endorsement is not None:
            selected_statements(cfg.endorsement)

    async def administer(self, ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
        await administer_endorsement(ctx, stage, self_notes)
        return []

    def planned(self, cfg: RunConfig, stage: int, model_kind: str) -> Planned:
        """One call per statement (`limit` per dimension, as far as its file goes) and sample (by probability: one)."""
        e = cfg.probes.endorsement
        if e is None:
            return Planned()
        scored = planned_by_probability(cfg, model_kind)
        questions = [cfg.prompts.endorsement_question.format(statement=s.text) for s in selected_statements(e)]
        return tokens.persona_calls(cfg, stage, questions * (1 if scored else e.samples), 1 if scored else e.max_tokens)

    def observe(self, e: EndorsementAnswer) -> list[tuple[str, str, Value]]:
        return [(f"{NAME}.{e.dimension}", e.answer_id, value(e))]

    def whole(self, events: list[Event], cfg: StatsConfig, config: dict) -> tuple[StageFigures, Profile | None]:
        rows: dict[int, list] = defaultdict(list)
        for e in events:
            if isinstance(e, EndorsementAnswer):
                v = value(e)
                rows[e.stage].append((e.sample, e.dimension, str(e.item_index), None if v is None else float(v)))
        if not rows:
            return {}, None
        return {}, rows_profile("endorsement rate per value dimension (fraction of answers expressing it; "
                                "by probability: the mean P of an answer expressing it)",
                                "dimensions, and statements within each", rows, cfg)

    def chance_of(self, figure: str, config: dict | None = None) -> float | None:
        return 0.5 if figure.startswith(f"{NAME}.") else None  # yes or no at random, whatever the keying

    def meaning(self, figure: str) -> str | None:
        instrument, _, dimension = figure.partition(".")
        return f"fraction of answers expressing {dimension} (its statements keyed both ways)" \
            if instrument == NAME else None

    def shown(self, e: EndorsementAnswer) -> Shown:
        return scored("endorsement", e, e.answer, "neither yes nor no")

    def answer_row(self, e: EndorsementAnswer) -> dict:
        return {"instrument": NAME, "id": e.answer_id, "valid": value(e) is not None, "key": e.dimension,
                "value": value(e)}


INSTRUMENT = Endorsement()
