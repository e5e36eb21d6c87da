"""Answers constrained to a fixed set: a JSON schema where the backend enforces one, and a
strict parser for the reply either way. A reply naming none of the values parses to None —
it is recorded as unparseable by the caller, never guessed."""

from __future__ import annotations

import json
import re

from simulator.config import SamplingConfig
from simulator.context.memory import Recalled
from simulator.context.state import RunContext


def enum_format(name: str, values: list[str]) -> dict:
    """An OpenAI-style response format: `{"answer": one of values}`."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"type": "string", "enum": list(values)}},
        "required": ["answer"], "additionalProperties": False}}}


def parse_enum(raw: str, values: list[str], leading: re.Pattern | None = None) -> str | None:
    """The value named by `{"answer": ...}`, by the whole reply, or by the `leading` pattern's
    first group at the start of the reply."""
    try:
        answer = json.loads(raw).get("answer")
        return answer if answer in values else None
    except (json.JSONDecodeError, AttributeError, TypeError):
        pass
    if raw.strip() in values:
        return raw.strip()
    match = leading.match(raw) if leading else None
    found = next((group for group in match.groups() if group), None) if match else None
    return found if found in values else None


AB = ["A", "B"]
# "B", "(B)", "B. ..." or "B:" — never the article in "A shutdown ...".
_LEADING_AB = re.compile(r"^\s*(?:\(([AB])\)|([AB])(?=\s*$|[).:]))")


def parse_ab(raw: str) -> str | None:
    return parse_enum(raw, AB, _LEADING_AB)


YES_NO = ["yes", "no"]
_LEADING_YES_NO = re.compile(r"^\s*(yes|no)\b")


def parse_yes_no(raw: str) -> str | None:
    return parse_enum(raw.lower(), YES_NO, _LEADING_YES_NO)


async def ask_enum(ctx: RunContext, instrument: str, stage: int, self_notes: str, recalled: list[Recalled],
                   question: str, values: list[str], max_tokens: int, seed: int) -> str:
    """The persona's raw reply to `question`, constrained to `values` where the backend can."""
    sampling = SamplingConfig(ctx.cfg.probes.sampling.temperature, max_tokens)
    return await ctx.call("persona", "probe", stage, ctx.messages(self_notes, recalled, question),
                          sampling, seed, response_format=enum_format("answer", values), instrument=instrument)
