"""What flows through the graph: the checkpointed state, and the run's live dependencies.

`RunState` is small and serialisable (it is what the checkpointer saves). `RunContext` holds
the objects a node needs (models, memory, log) and is handed to nodes by LangGraph's runtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from simulator.config import RunConfig, SamplingConfig
from simulator.context.memory import Memory, MemoryReader, Recalled
from simulator.context.persona import PersonaCard
from simulator.context.prompts import persona_messages
from simulator.models.backends import Backend, Reply
from simulator.models.cache import ModelCallCache, cache_file
from simulator.trajectory import Caller, EventLog, MemoryRead, ModelCall, Purpose, Retry

log = logging.getLogger("simulator")
# One line per model call: in the run's simulate.log; on the terminal only with verbose=true (simulator.loop.progress).
calls_log = logging.getLogger("simulator.calls")


class RunState(TypedDict):
    stage: int
    self_notes: str  # the persona's notes to itself; rewritten by the idealise operator
    episode: str  # this stage's episode task and what the persona did
    answers: list[dict]  # this stage's free-text answers (ProbeAnswer events), for the judges
    core_values: list[str] | None  # the stage-0 values the values judge tracks; None before stage 0's judge
    log_seq: int  # events written when the node finished: a resume keeps exactly these


def derive_seed(run_seed: int, *parts: object) -> int:
    """A sampling seed fixed by the run seed and where the call is made, so reruns repeat it."""
    key = ":".join(str(p) for p in (run_seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little") & 0x7FFFFFFF


def call_key(model: Backend, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """What identifies a model call for caching: the backend's kind and model (`Backend.identity`),
    the prompt and every parameter (sampling, seed, response format, tools)."""
    canonical = json.dumps({"model": model.identity, "messages": messages, "params": params}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def served_model(name: str) -> str:
    """A backend's name without the server it is reached at (`model@url`)."""
    return name.split("@", 1)[0]


class Observer:
    """What a run tells whoever watches it as it goes (the terminal's display, `simulator.loop.progress`);
    this one listens to nothing."""

    def step(self, stage: int, name: str) -> None:
        """A step of the stage begins: begin (its operators applied), episode, reflect, an instrument (its name)
        or judge."""

    def called(self, reply: Reply, cached: bool) -> None:
        """A model call came back (or from the cache)."""

    def finished(self, status: str) -> None:
        """The run ended: completed or failed."""


@dataclass
class RunContext:
    cfg: RunConfig
    persona: PersonaCard
    persona_model: Backend
    judge_model: Backend
    memory: Memory | None  # None when only judging (rescoring a finished run)
    events: EventLog
    run_dir: Path
    stage_models: dict[int, Backend] = field(default_factory=dict)  # raise_model: the persona's model per stage
    partner: PersonaCard | None = None  # grow_together: the persona it deliberates with, if not a human
    cache: ModelCallCache | None = None  # None: opened from cfg.cache (stays None when it is off)
    persona_names: frozenset[str] = frozenset()  # the persona's models by name, where they are not these backends
    observer: Observer = field(default_factory=Observer)  # hears of each step and model call

    def judge_grades_itself(self) -> bool:
        """Whether the judge is a model the persona runs on (by the model's name, wherever it is served: one
        model on two servers is one model): its verdicts then grade itself."""
        names = self.persona_names or {self.persona_model.name, *(m.name for m in self.stage_models.values())}
        return served_model(self.judge_model.name) in {served_model(n) for n in names}

    def __post_init__(self) -> None:
        if self.cache is None and self.cfg.cache.enabled:
            self.cache = ModelCallCache(cache_file(self.cfg.cache, self.run_dir))

    @property
    def store(self) -> Memory:
        """The persona's memory; a context that only judges (rescore) has none and must not ask."""
        if self.memory is None:
            raise RuntimeError("this run context only judges: it has no memory")
        return self.memory

    def messages(self, self_notes: str, recalled: list[Recalled], request: str,
                 system_extra: str = "") -> list[dict[str, str]]:
        """The persona's messages for one request, laid out with the run's prompts."""
        return persona_messages(self.cfg.prompts, self.persona, self_notes, recalled, request, system_extra)

    def persona_at(self, stage: int) -> Backend:
        return self.stage_models.get(stage, self.persona_model)

    async def call(self, role: Caller, purpose: Purpose, stage: int, messages: list[dict[str, str]],
                   sampling: SamplingConfig, seed: int, response_format: dict | None = None,
                   instrument: str | None = None) -> str:
        """One model call's text (see `complete`)."""
        return (await self.complete(role, purpose, stage, messages, sampling, seed, response_format,
                                    instrument)).text

    async def complete(self, role: Caller, purpose: Purpose, stage: int, messages: list[dict[str, str]],
                       sampling: SamplingConfig, seed: int, response_format: dict | None = None,
                       instrument: str | None = None, tools: list[dict] | None = None,
                       logprobs: int | None = None) -> Reply:
        """One model call, logged as a `model_call` event and reported as progress. A call the
        cache holds calls no model (a role in `cache.replay` must be in it). `tools` offers native
        tool calls, which come back in the reply; `logprobs=k` asks for the first token's k most
        likely candidates (`Reply.top_logprobs`, recorded in the event)."""
        model = self.persona_at(stage) if role == "persona" else self.judge_model
        params: dict[str, Any] = {"temperature": sampling.temperature,
                                  "max_tokens": sampling.max_tokens, "seed": seed}
        if response_format:
            params["response_format"] = response_format
        if tools:
            params["tools"] = tools
        if logprobs:
            params.update(logprobs=True, top_logprobs=logprobs)
        key = call_key(model, messages, params)
        held = self.cache.get(key) if self.cache else None
        cached = held is not None
        reply = held if held is not None else await self._call_model(model, key, role, purpose, stage, messages, params)
        latency = 0.0 if cached else reply.latency_s  # no time was spent in a model
        self.events.emit(ModelCall, stage, role=role, purpose=purpose, instrument=instrument, model=model.name,
                         messages=messages, output=reply.text, params=params, cached=cached,
                         tool_calls=reply.tool_calls, prompt_tokens=reply.prompt_tokens,
                         completion_tokens=reply.completion_tokens, latency_s=latency,
                         top_logprobs=reply.top_logprobs)
        calls_log.info("stage %d/%d  %-7s %-7s %5.1fs  %s tokens out%s", stage, self.cfg.schedule.stages - 1,
                       purpose, role, latency, reply.completion_tokens, " (cached)" if cached else "")
        self.observer.called(reply, cached)
        return reply

    async def _call_model(self, model: Backend, key: str, role: Caller, purpose: Purpose, stage: int,
                          messages: list[dict[str, str]], params: dict[str, Any]) -> Reply:
        """A call the cache does not hold: made, logging each retry, and stored."""
        if role in self.cfg.cache.replay:
            assert self.cache is not None, "a replayed role needs the cache (cache.validate refuses it off)"
            raise self.cache.miss(stage, role, purpose)

        def on_retry(attempt: int, err: BaseException, wait: float) -> None:
            self.events.emit(Retry, stage, role=role, purpose=purpose, attempt=attempt,
                             error=f"{type(err).__name__}: {err}"[:500], wait_s=wait)
            log.warning("stage %d  %s %s: %s; retrying in %.1fs", stage, purpose, role, type(err).__name__, wait)

        reply = await model.complete(messages, on_retry=on_retry, **params)
        if self.cache:
            self.cache.put(key, reply)
        return reply

    def recall(self, stage: int, query: str, memory: MemoryReader | None = None) -> list[Recalled]:
        """A logged memory search (through a read-only view when one is given)."""
        found = (memory or self.store).search(query)
        self.events.emit(MemoryRead, stage, query=query, k=self.store.top_k,
                         ids=[r.id for r in found], distances=[r.distance for r in found])
        return found
