"""The tokens a plan (`simulate --plan`, `simulator.loop.progress.plan`) expects its model calls to take, without
calling a model: the one place where an instrument's `planned` turns the prompts it would render into tokens.

- Prompt tokens are an estimate always: the texts the config fixes (the persona card's system message, the
  items, instructions and rubrics) are rendered as the instrument renders them and counted; what grows as the run
  goes (the memories recalled, the self-notes, an episode's transcript, the answers a judge reads) is taken at a
  size the config bounds (`context_tokens`, and the callers' own notes); a chat template adds `MESSAGE_TOKENS` per
  message. A response format or tool schema sent beside the prompt is not counted (a served API may count it).
- Completion tokens are a bound: each call's max_tokens.
- The counter: the embedded model's own tokenizer (its GGUF's vocabulary, loaded without its weights in a fraction
  of a second); for a served model the shipped GGUF's as a stand-in (a different tokenizer, whose counts are only
  indicative of the served model's: not measured against one here); else characters / 4. `counting` picks one
  for a block; outside one it is characters / 4, which the progress display's plan uses (it shows calls only).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from simulator.config import RunConfig, resolve_path
from simulator.context.persona import PersonaCard, load_persona
from simulator.context.prompts import system_message
from simulator.instruments.instrument import Planned

CHARS_PER_TOKEN = 4
MESSAGE_TOKENS = 4  # a chat template's tokens around each message (ChatML: <|im_start|>role\n ... <|im_end|>\n)
REPLY_TOKENS = 3  # and the assistant turn it opens for the reply


def by_chars(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


_counter: Callable[[str], int] = by_chars
_described = "characters / 4"


def count(text: str) -> int:
    """The tokens of a text, by the counter in use (`counting`)."""
    return _counter(text) if text else 0


def described() -> str:
    """What counts the tokens, in words."""
    return _described


def _gguf_counter(path: Path) -> Callable[[str], int]:
    """A GGUF's tokenizer, its vocabulary loaded without the weights; llama.cpp's notes to stderr silenced."""
    from llama_cpp import Llama

    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)

    @lru_cache(maxsize=65536)
    def tokens(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return tokens


def tokenizer_for(model_cfg: Any) -> tuple[Callable[[str], int], str]:
    """The counter for a `model` config, and what it is: the embedded model's GGUF, the shipped GGUF as a stand-in
    for a served model, or characters / 4 where no GGUF can be read."""
    from simulator.models.backends import shipped_gguf

    kind = model_cfg.get("kind", "embedded") if isinstance(model_cfg, dict) else getattr(model_cfg, "kind", "embedded")
    own = (model_cfg.get("model_path") if isinstance(model_cfg, dict) else getattr(model_cfg, "model_path", None)) \
        if kind == "embedded" else None
    try:
        path = Path(own) if own else shipped_gguf()
        counter = _gguf_counter(path)
    except Exception:  # no llama_cpp, no shipped model, a file it cannot read: the rough rule still plans
        return by_chars, "characters / 4 (no GGUF tokenizer could be loaded)"
    if kind == "embedded":
        return counter, f"the embedded model's tokenizer ({path.name})"
    return counter, (f"the tokenizer of {path.name}, a stand-in for the served model's own "
                     "(a different tokenizer: its counts are indicative only)")


@contextmanager
def counting(model_cfg: Any) -> Iterator[str]:
    """Count tokens within the block with the tokenizer for this model (`tokenizer_for`); yields what it is."""
    global _counter, _described
    before = _counter, _described
    _counter, _described = tokenizer_for(model_cfg)
    try:
        yield _described
    finally:
        _counter, _described = before


@lru_cache(maxsize=64)
def _persona(name: str, personas_dir: str) -> PersonaCard:
    return load_persona(name, resolve_path(personas_dir))


def persona_of(cfg: RunConfig) -> PersonaCard:
    return _persona(cfg.persona, cfg.personas_dir)


def system_tokens(cfg: RunConfig, extra: str = "") -> int:
    """The persona's system message (its prompt and constitution, and `extra`), as `persona_messages` lays it out."""
    return count(system_message(cfg.prompts, persona_of(cfg), extra)) + MESSAGE_TOKENS


def memory_tokens(cfg: RunConfig) -> int:
    """A recalled memory's size, estimated: a reflection's bound (agent.reflect.max_tokens); an episode's memory
    (its task, what it did and its answer) and a document's passage are of that order."""
    return cfg.agent.reflect.max_tokens


def notes_tokens(cfg: RunConfig, stage: int) -> int:
    """Its self-notes at a stage, estimated: none until an idealise stage (every stage after 0 applies the
    schedule's operators) rewrites them, at most a reflection; a tool that rewrites them is not foreseen."""
    idealised = stage > 0 and "idealise" in cfg.schedule.operators
    return count(cfg.prompts.notes_heading) + cfg.agent.reflect.max_tokens if idealised else 0


def recalled_count(cfg: RunConfig, stage: int) -> int:
    """The memories a search at this stage recalls: memory.top_k, or fewer while memory holds fewer (the card's
    seeds, and an episode and a reflection written each stage before the instruments ask)."""
    return min(cfg.memory.top_k, len(persona_of(cfg).seed_memories) + 2 * (stage + 1))


def context_tokens(cfg: RunConfig, stage: int, recall: bool = True) -> int:
    """What a persona request carries besides its own text at this stage: its notes and the memories recalled."""
    recalled = recalled_count(cfg, stage) if recall else 0
    memories = count(cfg.prompts.memories_heading) + recalled * (memory_tokens(cfg) + 2) if recalled else 0
    return notes_tokens(cfg, stage) + memories


def persona_calls(cfg: RunConfig, stage: int, requests: list[str], max_tokens: int, exact: bool = True,
                  system_extra: str = "", recall: bool = True) -> Planned:
    """One persona call per request, each laid out as `RunContext.messages` lays it out (system message, notes,
    memories, the request), at most `max_tokens` back."""
    base = system_tokens(cfg, system_extra) + context_tokens(cfg, stage, recall) + MESSAGE_TOKENS + REPLY_TOKENS
    return Planned(len(requests), exact, sum(base + count(r) for r in requests), len(requests) * max_tokens)


def judge_calls(cfg: RunConfig, prompts: list[str], max_tokens: int, extra_tokens: int = 0) -> Planned:
    """One judge call per prompt (with the judge's system message), `extra_tokens` more each for what it reads that
    the prompt leaves out (an answer still to be given); an estimate, as a judge retries invalid output."""
    base = count(cfg.prompts.judge_system) + 2 * MESSAGE_TOKENS + REPLY_TOKENS + extra_tokens
    return Planned(len(prompts), False, sum(base + count(p) for p in prompts), len(prompts) * max_tokens)
