"""`model=provider`: any LangChain chat model by name (`provider:model`, through `init_chat_model`),
tried on what runs here: OpenAI's own provider against the loopback OpenAI-compatible stub. Its
structured output goes by the provider's tool calling (or its native JSON schema, or JSON mode),
a reply that does not parse is an invalid answer, and a provider whose package is missing is one
clear error before the run. Other providers' wire protocols have no stand-in here: their packages
are optional and not installed in CI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from langchain_core.exceptions import ContextOverflowError, ModelAPIError, ModelAuthenticationError, ModelRateLimitError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from simulator.errors import SimulatorError
from simulator.models.backends import (
    Backend,
    ProviderChatModel,
    build_backend,
    check_reachable,
    replay_backend,
    transient,
)
from simulator.trajectory import read_events
from tests.conftest import KEY
from tests.openai_server import PLAIN_REPLY
from tests.test_served_model import SHORT, simulate

MESSAGES = [{"role": "user", "content": "Which?"}]
CHOICE = {"type": "json_schema", "json_schema": {"name": "choice", "schema": {
    "type": "object", "required": ["answer"], "properties": {"answer": {"enum": ["A", "B"]}}}}}
CALCULATOR = {"type": "function", "function": {"name": "calculator", "description": "Evaluates an expression.",
                                               "parameters": {"type": "object", "required": ["expression"],
                                                              "properties": {"expression": {"type": "string"}}}}}


@pytest.fixture(autouse=True)
def openai_key(monkeypatch):
    """OpenAI's model reads its key from OPENAI_API_KEY (model.api_key_env unset), as the stub expects."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def provider(stub, **options: Any) -> Backend:
    return build_backend({"kind": "provider", "model": "openai:stub", "base_url": stub.base_url,
                          "backoff_s": 0.01, **options})


def complete(backend: Backend, **params: Any):
    return asyncio.run(backend.complete(MESSAGES, temperature=0.5, max_tokens=16, seed=3, **params))


def run_provider(tmp_path: Path, stub, *overrides: str) -> tuple[Any, Path]:
    run_dir = tmp_path / "run"
    out = simulate(tmp_path, "model=provider", "model.model=openai:stub", f"model.base_url={stub.base_url}",
                   "model.backoff_s=0.01", f"hydra.run.dir={run_dir}", *SHORT, *overrides)
    return out, run_dir


def test_a_run_on_a_model_by_name_completes_its_calls_naming_the_model_by_provider_and_name(serve, tmp_path):
    stub = serve()
    out, run_dir = run_provider(tmp_path, stub)
    assert out.returncode == 0, out.stderr
    events = read_events(run_dir)
    calls = [e for e in events if e.type == "model_call"]
    assert calls and {e.model for e in calls} == {"openai:stub"}
    assert len(calls) == stub.answered and all(r["model"] == "stub" for r in stub.requests)
    # Structured output by function calling (the default): a forced tool call, no response format.
    forced = [r for r in stub.requests if isinstance(r.get("tool_choice"), dict)]
    assert forced and not any("response_format" in r for r in stub.requests)
    assert {r["tool_choice"]["function"]["name"] for r in forced} >= {"verdict"}
    verdicts = [e for e in events if e.type == "verdict"]
    assert verdicts and all(v.valid and v.score == 4 for v in verdicts)
    choices = [e for e in events if e.type == "choice_answer"]
    assert choices and all(c.chosen in c.order for c in choices)
    assert events[-1].status == "completed"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if KEY.encode() in p.read_bytes()] and KEY not in out.stdout + out.stderr


def test_structured_output_by_function_calling_is_a_forced_tool_call_whose_arguments_are_the_reply(serve):
    stub = serve()
    backend = provider(stub)
    assert (backend.name, backend.identity, backend.kind) == ("openai:stub", "provider:openai:stub", "provider")
    reply = complete(backend, response_format=CHOICE)
    assert json.loads(reply.text) == {"answer": "A"} and reply.tool_calls == []
    assert (reply.prompt_tokens, reply.completion_tokens) == (10, 5)  # from the raw message
    sent = stub.requests[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "choice"}}
    assert [t["function"]["name"] for t in sent["tools"]] == ["choice"] and "response_format" not in sent
    assert (sent["temperature"], sent["seed"]) == (0.5, 3)  # OpenAI's model takes a seed: it is sent


def test_structured_output_by_json_schema_sends_the_providers_response_format(serve):
    stub = serve()
    reply = complete(provider(stub, structured="json_schema"), response_format=CHOICE)
    assert json.loads(reply.text) == {"answer": "A"}
    sent = stub.requests[-1]
    assert sent["response_format"]["json_schema"]["name"] == "choice" and "tools" not in sent


def test_a_structured_reply_that_does_not_parse_is_returned_as_given_not_raised(serve):
    stub = serve(faults=["bad_tool_call"])
    assert complete(provider(stub), response_format=CHOICE).text == "{not json"  # the tool call's arguments
    assert complete(provider(stub, structured="json_mode"), response_format=CHOICE).text == PLAIN_REPLY


def test_a_run_whose_structured_replies_do_not_parse_records_them_invalid_and_completes(serve, tmp_path):
    out, run_dir = run_provider(tmp_path, serve(), "model.structured=json_mode")  # the stub answers in prose
    assert out.returncode == 0, out.stderr
    events = read_events(run_dir)
    verdicts, choices = [e for e in events if e.type == "verdict"], [e for e in events if e.type == "choice_answer"]
    assert verdicts and not any(v.valid for v in verdicts) and all("invalid JSON" in v.error for v in verdicts)
    assert choices and all(c.chosen is None for c in choices)
    assert events[-1].status == "completed"


def test_native_tool_calls_go_through_bind_tools(serve):
    stub = serve(call_tool="calculator")
    reply = complete(provider(stub), tools=[CALCULATOR])
    assert reply.tool_calls == [{"name": "calculator", "args": {"expression": "stub"}}]
    assert "tool_choice" not in stub.requests[-1]


@pytest.mark.skipif(importlib.util.find_spec("langchain_anthropic") is not None,
                    reason="langchain-anthropic is installed")
def test_a_provider_whose_package_is_missing_is_a_clear_error_before_the_run(tmp_path):
    out = simulate(tmp_path, "model=provider", "model.model=anthropic:claude-sonnet-4-5",
                   f"hydra.run.dir={tmp_path}/runs/x")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "model.model" in out.stderr and "langchain-anthropic" in out.stderr and "[providers]" in out.stderr
    assert not (tmp_path / "runs" / "x").exists()


def test_a_model_without_its_provider_or_a_bad_method_or_a_missing_key_is_named(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    for options, option in (({"model": "gpt-4o"}, "judge.model.model"),
                            ({"model": "nowhere:x"}, "judge.model.model"),
                            ({"model": "openai:x", "structured": "xml"}, "judge.model.structured"),
                            ({"model": "openai:x", "api_key_env": "NO_SUCH_KEY"}, "judge.model.api_key_env")):
        with pytest.raises(SimulatorError) as err:
            build_backend({"kind": "provider", **options}, "judge.model")
        assert err.value.source == option


def test_an_unreachable_openai_endpoint_is_found_before_the_run():
    backend = build_backend({"kind": "provider", "model": "openai:x", "base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(SimulatorError, match="unreachable"):
        check_reachable(backend, "model")


def test_a_replayed_model_by_name_has_the_name_and_identity_of_the_real_one(serve):
    stub = serve()
    config = {"kind": "provider", "model": "openai:stub", "base_url": stub.base_url}
    real, replayed = build_backend(config), replay_backend(config)
    assert (replayed.name, replayed.identity) == (real.name, real.identity) == ("openai:stub", "provider:openai:stub")


class Untooled(BaseChatModel):
    """A provider's model that answers with the sampling it was built with and the keywords it was called with;
    it has no tool calling (so no structured output)."""

    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def _llm_type(self) -> str:
        return "recorder"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        built = {k: v for k, v in self.model_dump().items() if k in ("temperature", "max_tokens", "seed")}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(json.dumps({**built, "called": kwargs})))])


class Recorder(Untooled):
    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=tools, **kwargs)


class SeededRecorder(Recorder):
    seed: int | None = None


class Fake(ProviderChatModel):
    made: ClassVar[type[BaseChatModel]] = Recorder

    def _init(self, **sampling: Any) -> BaseChatModel:
        return self.made(**{k: v for k, v in sampling.items() if v is not None})


class SeededFake(Fake):
    made = SeededRecorder


class UntooledFake(Fake):
    made = Untooled


def test_a_structured_output_method_the_providers_model_lacks_is_refused_when_it_is_built():
    with pytest.raises(SimulatorError) as err:
        Backend(UntooledFake(model_name="fake:x"), kind="provider")
    assert err.value.source == "model.structured" and "Untooled does not take" in err.value.problem


def test_sampling_goes_to_the_models_constructor_and_the_seed_only_to_a_model_that_takes_one(caplog):
    with caplog.at_level(logging.WARNING):
        unseeded = Backend(Fake(model_name="fake:x"), kind="provider")
    assert "takes no sampling seed" in caplog.text
    reply = json.loads(complete(unseeded).text)
    assert reply == {"temperature": 0.5, "max_tokens": 16, "called": {}}  # the seed is not sent
    reply = json.loads(complete(Backend(SeededFake(model_name="fake:x"), kind="provider")).text)
    assert reply == {"temperature": 0.5, "max_tokens": 16, "seed": 3, "called": {}}


def test_transient_faults_are_recognised_whatever_the_provider():
    request = httpx.Request("POST", "http://127.0.0.1/v1")
    for err in (httpx.ReadTimeout("slow", request=request), httpx.ConnectError("refused", request=request),
                httpx.RemoteProtocolError("cut", request=request), ModelRateLimitError(), ModelAPIError()):
        assert transient(err), err
    for err in (ModelAuthenticationError(), ContextOverflowError(), ValueError("bad")):
        assert not transient(err), err
