"""LLM judges: a rubric file, a fixed 1-5 scale, a justification and quotes as evidence.

The judge's output is constrained by a JSON schema where the backend supports it and is
validated here either way; a quote that does not occur in the answer invalidates it. Invalid
output is retried `judge.retries` times, then recorded as an invalid verdict: never guessed,
never counted as a score.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from simulator.config import CoreValuesConfig, RunConfig, SamplingConfig, resolve_path
from simulator.context.state import RunContext, derive_seed
from simulator.errors import SimulatorError
from simulator.trajectory import (
    CORE_VALUES,
    SPEC_ADHERENCE,
    ProbeAnswer,
    StatedValue,
    ValueComparison,
    ValuesVerdict,
    Verdict,
)

T = TypeVar("T")
SPEC = SPEC_ADHERENCE  # the instrument name of spec-adherence verdicts
SCALE = (1, 2, 3, 4, 5)
M = TypeVar("M", bound=BaseModel)
JUSTIFICATION_CHARS, QUOTES, QUOTE_CHARS = 120, 2, 60
# Every token is at least one character, so a verdict of at most this many characters always
# fits in as many tokens: with max_tokens at least this, constrained output is never cut off.
MAX_VERDICT_CHARS = JUSTIFICATION_CHARS + QUOTES * QUOTE_CHARS + 64
RUBRIC_FIELDS = ("question", "answer")  # required; $persona_constitution is optional


class JudgeOutput(BaseModel):
    """What a judge must return."""

    justification: str
    quotes: list[str]
    score: Literal[1, 2, 3, 4, 5]  # SCALE


RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "justification": {"type": "string", "maxLength": JUSTIFICATION_CHARS},
                "quotes": {"type": "array", "items": {"type": "string", "maxLength": QUOTE_CHARS},
                           "maxItems": QUOTES},
                "score": {"type": "integer", "enum": list(SCALE)},
            },
            "required": ["justification", "quotes", "score"],
            "additionalProperties": False,
        },
    },
}


def template_file(path: str, fix: str) -> tuple[Path, string.Template]:
    """A judge's prompt template from its file (every rubric loads through here); `fix` says
    which option to point elsewhere when the file is missing."""
    file = resolve_path(path)
    if not file.is_file():
        raise SimulatorError(f"rubric {path}", "", "no such file", fix)
    return file, string.Template(file.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def load_rubric(path: str) -> string.Template:
    """A rubric template; it must use $question and $answer and no unknown placeholder, and
    define every point of the verdict schema's scale ("1 = ..." to "5 = ...") and no other."""
    file, template = template_file(path, "point the instrument's rubric at an existing file")
    names = set(template.get_identifiers())
    missing = set(RUBRIC_FIELDS) - names
    unknown = names - set(RUBRIC_FIELDS) - {"persona_constitution"}
    if missing or unknown:
        wrong = f"missing ${', $'.join(sorted(missing))}" if missing else ""
        problem = wrong or f"unknown ${', $'.join(sorted(unknown))}"
        raise SimulatorError(str(file), "placeholders", problem,
                             "use $question, $answer and optionally $persona_constitution")
    defined = {int(point) for point in re.findall(r"^\s*(\d+)\s*=", template.template, re.M)}
    if defined != set(SCALE):
        raise SimulatorError(str(file), "scale", f"defines points {sorted(defined)}, but verdicts are scored "
                             f"on {list(SCALE)}", "define each point as a line '1 = ...' to '5 = ...'")
    return template


def parse_verdict(raw: str, answer: str, require_quote: bool = False) -> JudgeOutput:
    """Strict JSON and schema, and every quote must occur in the answer (case and spacing
    aside); with `require_quote`, at least one quote. Raw newlines inside strings are allowed:
    llama.cpp's grammar lets them through, and they change nothing about the meaning."""
    out = _validated(JudgeOutput, raw)
    if require_quote and not out.quotes:
        raise ValueError("no quote from the answer as evidence")
    missing = [q for q in out.quotes if not quote_found(q, answer)]
    if missing:
        raise ValueError(f"quote not in the answer: {missing[0]!r}")
    return out


def validate(cfg: RunConfig) -> None:
    """Refuse judge settings that could not produce a verdict, before anything is written."""
    if cfg.judge.retries < 0:
        raise SimulatorError("judge.retries", "", f"is {cfg.judge.retries}", "give 0 or more")
    if cfg.judge.sampling.max_tokens < MAX_VERDICT_CHARS:
        raise SimulatorError("judge.sampling.max_tokens", "", f"is {cfg.judge.sampling.max_tokens}, "
                             f"too few for a verdict of up to {MAX_VERDICT_CHARS} characters",
                             f"set judge.sampling.max_tokens={MAX_VERDICT_CHARS} or more")
    for instrument in cfg.probes.open.values():
        load_rubric(instrument.rubric)
    if cfg.judge.spec_rubric is not None and "persona_constitution" not in load_rubric(
            cfg.judge.spec_rubric).get_identifiers():
        raise SimulatorError(f"judge.spec_rubric={cfg.judge.spec_rubric}", "placeholders",
                             "lacks $persona_constitution: the judge would not see the policy it scores against",
                             "add $persona_constitution to the rubric")
    if cfg.probes.core_values is not None:
        _template(cfg.probes.core_values.list_rubric, "answer")
        _template(cfg.probes.core_values.compare_rubric, "answer", "values")


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def quote_found(quote: str, answer: str) -> bool:
    return bool(_normalise(quote)) and _normalise(quote) in _normalise(answer)


@dataclass(frozen=True)
class Target:
    """What a judge reads: an answer (or an episode's reply) and what the persona was asked."""

    answer_id: str
    stage: int
    question: str
    answer: str


async def _ask(ctx: RunContext, target: Target, task: str, prompt: str, response_format: dict,
               parse: Callable[[str], T], sampling: SamplingConfig | None = None, instrument: str | None = None
               ) -> tuple[T | None, int, str | None]:
    """A judge call retried on invalid output: (parsed output or None, attempts, last error)."""
    messages = [{"role": "system", "content": ctx.cfg.prompts.judge_system}, {"role": "user", "content": prompt}]
    error = None
    for attempt in range(1, ctx.cfg.judge.retries + 2):
        seed = derive_seed(ctx.cfg.seed, target.answer_id, task, attempt)
        raw = await ctx.call("judge", "judge", target.stage, messages, sampling or ctx.cfg.judge.sampling, seed,
                             response_format=response_format, instrument=instrument)
        try:
            return parse(raw), attempt, None
        except ValueError as err:
            error = f"attempt {attempt}: {err}"
    return None, attempt, error


async def score(ctx: RunContext, target: Target, instrument: str, rubric_path: str) -> Verdict:
    """A 1-5 verdict on the target with the rubric, quotes checked against the answer."""
    rubric = load_rubric(rubric_path)
    prompt = rubric.substitute(question=target.question, answer=target.answer,
                               persona_constitution="\n".join(f"- {p}" for p in ctx.persona.constitution))
    # The original instrument's seeds are kept ("judge"), so its verdicts repeat across versions.
    task = "judge" if instrument in ctx.cfg.probes.open else instrument
    # Spec adherence must cite the answer: a score against a policy with no evidence is not a verdict.
    out, attempts, error = await _ask(ctx, target, task, prompt, RESPONSE_FORMAT,
                                      lambda raw: parse_verdict(raw, target.answer, instrument == SPEC),
                                      instrument=instrument)
    if out is None:
        return ctx.events.emit(Verdict, target.stage, answer_id=target.answer_id, instrument=instrument,
                               valid=False, attempts=attempts, error=error)
    return ctx.events.emit(Verdict, target.stage, answer_id=target.answer_id, instrument=instrument, valid=True,
                           score=out.score, justification=out.justification, quotes=out.quotes, attempts=attempts)


def target_of(answer: ProbeAnswer) -> Target:
    return Target(answer.answer_id, answer.stage, answer.question, answer.answer)


async def judge_answer(ctx: RunContext, answer: ProbeAnswer) -> Verdict:
    return await score(ctx, target_of(answer), answer.instrument, ctx.cfg.probes.open[answer.instrument].rubric)


async def judge_all(ctx: RunContext, answers: list[ProbeAnswer]) -> list[Verdict]:
    return list(await asyncio.gather(*(judge_answer(ctx, a) for a in answers)))


async def judge_stage(ctx: RunContext, answers: list[ProbeAnswer], episodes: list[Target],
                      baseline: list[str] | None) -> list[str] | None:
    """Everything judged at a stage: rubric scores for open answers, the values judge for
    core-values answers, and spec adherence for every free-text answer and the episode.
    Returns the stage-0 values the values judge tracks (chosen at stage 0)."""
    core = [a for a in answers if a.instrument == CORE_VALUES]
    await judge_all(ctx, [a for a in answers if a.instrument != CORE_VALUES])
    if core:
        baseline = await judge_core_values(ctx, core, baseline)
    spec = [a for a in answers if ctx.cfg.judge.spec_samples <= 0 or a.sample < ctx.cfg.judge.spec_samples]
    await judge_spec(ctx, episodes + [target_of(a) for a in spec])
    return baseline


async def judge_spec(ctx: RunContext, targets: list[Target]) -> list[Verdict]:
    """Spec adherence: each target scored against the persona's own constitution."""
    rubric = ctx.cfg.judge.spec_rubric
    if rubric is None:
        return []
    return list(await asyncio.gather(*(score(ctx, t, SPEC, rubric) for t in targets)))


# The values judge: "state your core values" answers, listed and then compared with stage 0.
VALUE_CHARS, MAX_VALUES = 40, 6
MAX_VALUES_CHARS = MAX_VALUES * (VALUE_CHARS + QUOTE_CHARS + 48) + 32  # a full list fits in this many tokens
STATUSES = ("kept", "shifted", "reversed", "dropped")


class _ValueList(BaseModel):
    values: list[StatedValue]


class _Comparisons(BaseModel):
    comparison: list[ValueComparison]


def _json_format(name: str, key: str, item: dict, min_items: int, max_items: int) -> dict:
    properties = {k: {"type": "string", **extra} for k, extra in item.items()}
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": {
        "type": "object", "required": [key], "additionalProperties": False,
        "properties": {key: {"type": "array", "minItems": min_items, "maxItems": max_items, "items": {
            "type": "object", "properties": properties, "required": list(item), "additionalProperties": False}}}}}}


LIST_FORMAT = _json_format("values", "values", {"value": {"maxLength": VALUE_CHARS},
                                                "quote": {"maxLength": QUOTE_CHARS}}, 0, MAX_VALUES)


def compare_format(values: list[str]) -> dict:
    return _json_format("comparison", "comparison", {"value": {"enum": values}, "status": {"enum": list(STATUSES)},
                                                     "quote": {"maxLength": QUOTE_CHARS}}, len(values), len(values))


def _validated(model: type[M], raw: str) -> M:
    try:
        return model.model_validate(json.loads(raw, strict=False))
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{first['msg']} at {'.'.join(map(str, first['loc'])) or '(top)'}") from None


def parse_values(raw: str, answer: str) -> list[StatedValue]:
    """The stated values, each with a quote found in the answer; a repeated name counts once."""
    found: dict[str, StatedValue] = {}
    for v in _validated(_ValueList, raw).values:
        if not quote_found(v.quote, answer):
            raise ValueError(f"quote not in the answer: {v.quote!r}")
        found.setdefault(_normalise(v.value), v)
    return list(found.values())


def parse_comparison(raw: str, answer: str, values: list[str]) -> list[ValueComparison]:
    """One entry per earlier value, each with a quote found in the answer unless it was dropped."""
    entries = _validated(_Comparisons, raw).comparison
    if sorted(e.value for e in entries) != sorted(values):
        raise ValueError(f"compares {[e.value for e in entries]}, not each of {values} once")
    for e in entries:
        if e.status != "dropped" and not quote_found(e.quote, answer):
            raise ValueError(f"quote for {e.value!r} not in the answer: {e.quote!r}")
    return entries


def _values_sampling(ctx: RunContext) -> SamplingConfig:
    return SamplingConfig(ctx.cfg.judge.sampling.temperature, max(ctx.cfg.judge.sampling.max_tokens, MAX_VALUES_CHARS))


def _core_values(ctx: RunContext) -> CoreValuesConfig:
    assert ctx.cfg.probes.core_values is not None, "core values are judged only where they were asked"
    return ctx.cfg.probes.core_values


async def list_values(ctx: RunContext, answer: ProbeAnswer) -> ValuesVerdict:
    prompt = _template(_core_values(ctx).list_rubric, "answer").substitute(answer=answer.answer)
    values, attempts, error = await _ask(ctx, target_of(answer), "values-list", prompt, LIST_FORMAT,
                                         lambda raw: parse_values(raw, answer.answer), _values_sampling(ctx),
                                         CORE_VALUES)
    return ctx.events.emit(ValuesVerdict, answer.stage, answer_id=answer.answer_id, task="list",
                           valid=values is not None, values=values or [], attempts=attempts, error=error)


async def compare_values(ctx: RunContext, answer: ProbeAnswer, baseline: list[str]) -> ValuesVerdict:
    prompt = _template(_core_values(ctx).compare_rubric, "answer", "values").substitute(
        answer=answer.answer, values="\n".join(f"- {v}" for v in baseline))
    entries, attempts, error = await _ask(ctx, target_of(answer), "values-compare", prompt, compare_format(baseline),
                                          lambda raw: parse_comparison(raw, answer.answer, baseline),
                                          _values_sampling(ctx), CORE_VALUES)
    return ctx.events.emit(ValuesVerdict, answer.stage, answer_id=answer.answer_id, task="compare", baseline=baseline,
                           valid=entries is not None, comparison=entries or [], attempts=attempts, error=error)


def baseline_values(lists: list[ValuesVerdict], limit: int) -> list[str]:
    """The stage-0 values tracked: the most often stated over its answers (first stated first
    among equals), named as first stated."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for verdict in lists:
        for v in verdict.values:
            key = _normalise(v.value)
            counts[key] = counts.get(key, 0) + 1
            names.setdefault(key, v.value)
    ranked = sorted(counts, key=lambda k: -counts[k])  # stable: ties keep first-stated order
    return [names[k] for k in ranked[:limit]]


async def judge_core_values(ctx: RunContext, answers: list[ProbeAnswer], baseline: list[str] | None) -> list[str]:
    """Lists the values of each answer and compares each with the stage-0 values, which are
    chosen here at stage 0 (`baseline` None); returns them for the later stages."""
    lists = list(await asyncio.gather(*(list_values(ctx, a) for a in answers)))
    if baseline is None:
        baseline = baseline_values(lists, _core_values(ctx).max_values)
    if baseline:
        await asyncio.gather(*(compare_values(ctx, a, baseline) for a in answers))
    else:  # nothing to compare with: each answer is an invalid measurement, not a missing one
        for a in answers:
            ctx.events.emit(ValuesVerdict, a.stage, answer_id=a.answer_id, task="compare", valid=False,
                            attempts=0, error="no valid stage-0 value list to compare with")
    return baseline


@lru_cache(maxsize=None)
def _template(path: str, *required: str) -> string.Template:
    file, template = template_file(path, "point probes.core_values at an existing file")
    names = set(template.get_identifiers())
    if names != set(required):
        raise SimulatorError(str(file), "placeholders", f"are {sorted(names)}",
                             f"use exactly ${', $'.join(required)}")
    return template
