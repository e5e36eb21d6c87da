"""Answers constrained to a fixed set: a JSON schema where the backend enforces one, and a
strict parser for the reply either way. A reply naming none of the values parses to None —
it is recorded as unparseable by the caller, never guessed.

Or scored by probability (`probes.scoring=logprob`, after Perez et al., 2022, who score the same
items by the probability the model gives each answer): one call asks for the first token's
distribution, and each allowed value gets the probability of the tokens that spell it (" B", "B",
"(B" for a letter; "Yes", " yes" for a word), renormalised over the values. Departures: the
reply is not prefilled (a chat API gives no way to, so the first token may be "(" or a word; that
probability is lost, and `option_mass` records how much was left), and only the `top_logprobs`
most likely tokens are seen (OpenAI-compatible servers give at most 20)."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from simulator.config import RunConfig, SamplingConfig
from simulator.context.memory import Recalled
from simulator.context.state import RunContext
from simulator.errors import SimulatorError
from simulator.models.backends import Backend, gives_logprobs

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class ByProbability:
    """One call's first-token distribution over the allowed values."""

    raw: str  # the most likely first token: what the model would most likely have begun with
    probabilities: dict[str, float] | None  # value -> P, renormalised; None: no value among the candidates
    option_mass: float  # P of the allowed values' tokens before renormalising

    def most_probable(self) -> str | None:
        found = self.probabilities or {}
        return max(found, key=found.__getitem__) if found else None

    def recorded(self, field: str, value: str) -> dict[str, Any]:
        """What an answer event records of it: the probabilities, their mass, and P(value) as `field`."""
        return {"probabilities": self.probabilities, "option_mass": self.option_mass,
                field: (self.probabilities or {}).get(value)}


def by_probability(ctx: RunContext, stage: int) -> bool:
    """Whether the run's choices are scored by probability: asked for (logprob; auto: on the embedded model)
    and given by every model the persona has (a model ladder), so that no figure changes scoring between
    stages (a change that would read as drift)."""
    models = [ctx.persona_model, *ctx.stage_models.values()]
    if ctx.cfg.probes.scoring == "auto" and any(m.kind != "embedded" for m in models):
        return False
    return ctx.cfg.probes.scoring in ("auto", "logprob") and all(gives_logprobs(m) for m in models)


def planned_by_probability(cfg: RunConfig, model_kind: str) -> bool:
    """`by_probability` as a plan sees it, from the config: a provider's model by name is planned as sampled."""
    return model_kind in {"logprob": ("embedded", "openai"), "auto": ("embedded",)}.get(cfg.probes.scoring, ())


def value_of(token: str, values: list[str]) -> str | None:
    """The value a first token spells: a letter exactly ("B", " B", "(B", "B)"), a word whatever its case."""
    bare = token.strip().lstrip("(").rstrip(").:,").strip()
    for value in values:
        if bare == value or (len(value) > 1 and bare.lower() == value.lower()):
            return value
    return None


def option_probabilities(top: list[list], values: list[str]) -> tuple[dict[str, float] | None, float]:
    """Each value's probability among the first token's candidates, renormalised, and their mass before."""
    mass = dict.fromkeys(values, 0.0)
    for token, logprob in top:
        value = value_of(str(token), values)
        if value is not None:
            mass[value] += math.exp(logprob)
    total = sum(mass.values())
    return ({v: m / total for v, m in mass.items()} if total > 0 else None), total


async def ask_probabilities(ctx: RunContext, instrument: str, stage: int, self_notes: str,
                            recalled: list[Recalled], question: str, values: list[str], seed: int) -> ByProbability:
    """The persona's first-token distribution over `values` for `question`: one call of one token, without a
    grammar (which would make the first token "{")."""
    reply = await ctx.complete("persona", "probe", stage, ctx.messages(self_notes, recalled, question),
                               SamplingConfig(1.0, 1), seed, instrument=instrument,
                               logprobs=ctx.cfg.probes.top_logprobs)
    if not reply.top_logprobs and ctx.persona_at(stage).name not in _SILENT:
        _SILENT.add(ctx.persona_at(stage).name)  # said once per model: every such answer is invalid
        log.warning("probes.scoring: %s returned no log-probabilities (a server that does not give them, such as "
                    "llama-cpp-python's without --logits_all?): its answers are invalid; probes.scoring=sample "
                    "samples them", ctx.persona_at(stage).name)
    probabilities, mass = option_probabilities(reply.top_logprobs or [], values)
    return ByProbability(reply.text, probabilities, mass)


_SILENT: set[str] = set()  # models that returned no log-probabilities, already said


SCORINGS = ("auto", "sample", "logprob")


async def ask_scored(ctx: RunContext, instrument: str, stage: int, self_notes: str, recalled: list[Recalled],
                     question: str, values: list[str], max_tokens: int, seed: int, scored: bool,
                     parse: Callable[[str], str | None], field: str, counted: str) -> tuple[str, str | None, dict]:
    """The raw reply, the value it gives and what the answer event records of its probabilities: by probability
    (`scored`) the most probable value, and P(`counted`) as `field`; else a sampled reply, read by `parse`."""
    if scored:
        reply = await ask_probabilities(ctx, instrument, stage, self_notes, recalled, question, values, seed)
        return reply.raw, reply.most_probable(), reply.recorded(field, counted)
    raw = await ask_enum(ctx, instrument, stage, self_notes, recalled, question, values, max_tokens, seed)
    return raw, parse(raw), {}


def validate_scoring(cfg: RunConfig, persona_models: list[Backend]) -> None:
    """A scoring it knows; and says so where logprob was asked for and a persona's model gives no
    log-probabilities (the run's choices are then sampled, at every stage: `by_probability`)."""
    if cfg.probes.scoring not in SCORINGS:
        raise SimulatorError("probes.scoring", "", f"is {cfg.probes.scoring!r}", f"use one of {', '.join(SCORINGS)}")
    if cfg.probes.scoring == "logprob":
        for model in persona_models:
            if not gives_logprobs(model):
                log.warning("probes.scoring=logprob: %s gives no token log-probabilities; the run's choices are "
                            "sampled (probes.samples per item and order)", model.name)
