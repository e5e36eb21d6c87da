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
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ValidationError

from simulator.config import RunConfig, resolve_path
from simulator.errors import SimulatorError
from simulator.log import ProbeAnswer, Verdict
from simulator.state import RunContext, derive_seed

SCALE = (1, 2, 3, 4, 5)
JUSTIFICATION_CHARS, QUOTES, QUOTE_CHARS = 120, 2, 60
# Every token is at least one character, so a verdict of at most this many characters always
# fits in as many tokens: with max_tokens at least this, constrained output is never cut off.
MAX_VERDICT_CHARS = JUSTIFICATION_CHARS + QUOTES * QUOTE_CHARS + 64
RUBRIC_FIELDS = ("question", "answer")  # required; $persona_constitution is optional


class JudgeOutput(BaseModel):
    """What a judge must return."""

    justification: str
    quotes: list[str]
    score: Literal[SCALE]


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
JUDGE_SYSTEM = "You are a careful evaluator. You reply only with JSON."


@lru_cache(maxsize=None)
def load_rubric(path: str) -> string.Template:
    """A rubric template; it must use $question and $answer and no unknown placeholder, and
    define every point of the verdict schema's scale ("1 = ..." to "5 = ...") and no other."""
    file = resolve_path(path)
    if not file.is_file():
        raise SimulatorError(f"rubric {path}", "", "no such file",
                             "point the instrument's rubric at an existing file")
    template = string.Template(file.read_text(encoding="utf-8"))
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


def parse_verdict(raw: str, answer: str) -> JudgeOutput:
    """Strict JSON and schema, and every quote must occur in the answer (case and spacing
    aside). Raw newlines inside strings are allowed: llama.cpp's grammar lets them through,
    and they change nothing about the meaning."""
    try:
        out = JudgeOutput.model_validate(json.loads(raw, strict=False))
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{first['msg']} at {'.'.join(map(str, first['loc'])) or '(top)'}") from None
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


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def quote_found(quote: str, answer: str) -> bool:
    return bool(_normalise(quote)) and _normalise(quote) in _normalise(answer)


async def judge_answer(ctx: RunContext, answer: ProbeAnswer) -> Verdict:
    rubric = load_rubric(ctx.cfg.probes.open[answer.instrument].rubric)
    prompt = rubric.substitute(question=answer.question, answer=answer.answer,
                               persona_constitution="\n".join(f"- {p}" for p in ctx.persona.constitution))
    messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]
    error = None
    for attempt in range(1, ctx.cfg.judge.retries + 2):
        seed = derive_seed(ctx.cfg.seed, answer.answer_id, "judge", attempt)
        raw = await ctx.call("judge", "judge", answer.stage, messages, ctx.cfg.judge.sampling, seed,
                             response_format=RESPONSE_FORMAT)
        try:
            out = parse_verdict(raw, answer.answer)
        except ValueError as err:
            error = f"attempt {attempt}: {err}"
            continue
        return ctx.events.emit(Verdict, answer.stage, answer_id=answer.answer_id,
                               instrument=answer.instrument, valid=True, score=out.score,
                               justification=out.justification, quotes=out.quotes, attempts=attempt)
    return ctx.events.emit(Verdict, answer.stage, answer_id=answer.answer_id,
                           instrument=answer.instrument, valid=False, attempts=attempt, error=error)


async def judge_all(ctx: RunContext, answers: list[ProbeAnswer]) -> list[Verdict]:
    return list(await asyncio.gather(*(judge_answer(ctx, a) for a in answers)))
