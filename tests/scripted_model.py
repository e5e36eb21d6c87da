"""A deterministic scripted chat model: for tests and benchmarks only, never a default."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

ANSWER_MARK = "The AI's answer:\n"
SAID_AND_DONE_MARK = "What the AI said and did:\n"


def _filled(prompt: str, schema: dict) -> dict:
    """The simplest arguments a JSON schema accepts: "x" for strings, the minimum for numbers."""
    return {name: "x" if prop.get("type") == "string" else prop.get("minimum", 1)
            for name, prop in schema.get("properties", {}).items()}


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


class ScriptedChatModel(BaseChatModel):
    """Replies are a pure function of the prompt.

    Persona calls get `reply(prompt)`, by default a short sentence naming the request. Constrained calls (a
    `response_format` with an `answer` enum: choices, commands, yes/no) get
    `{"answer": choose(prompt, values)}`, by default a value picked by a hash of the prompt.
    Judge calls (a `response_format` named "verdict") get
    a schema-valid verdict whose score (1-5) is a hash of the prompt and whose quote is the
    answer's first words, unless `judge_reply` scripts something else. The values judge gets
    the answer's first words as its one value ("values"), and every earlier value kept
    ("comparison"), unless `values_reply` scripts something else.
    """

    model_name: str = "scripted"
    reply: Callable[[str], str] | None = None
    judge_reply: Callable[[str], str] | None = None
    choose: Callable[[str, list[str]], str] | None = None
    values_reply: Callable[[str, dict], str] | None = None
    arguments: Callable[[str, dict], dict] | None = None  # a forced tool call's arguments, given its schema
    call_tool: Callable[[str, list[str]], dict | None] | None = None  # native: {"name", "args"} or None
    extra_calls: int = 0  # native: copies of that call appended to the same reply
    # Calls asking for log-probabilities: the first token's [token, logprob] candidates (by default none).
    first_tokens: Callable[[str], list[list]] | None = None
    gives_logprobs: bool = False  # what simulator.models.backends.gives_logprobs reads

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        prompt = messages[-1].content
        if kwargs.get("logprobs"):
            return self._first_token(prompt)
        schema = (kwargs.get("response_format") or {}).get("json_schema", {})
        if schema.get("name") == "verdict":
            text = self.judge_reply(prompt) if self.judge_reply else self._verdict(prompt, schema)
        elif schema.get("name") in ("values", "comparison"):
            text = self.values_reply(prompt, schema) if self.values_reply else self._values(prompt, schema)
        elif schema and "answer" not in schema["schema"].get("properties", {}):
            text = json.dumps((self.arguments or _filled)(prompt, schema["schema"]))
        elif schema:
            values = schema["schema"]["properties"]["answer"]["enum"]
            choose = self.choose or (lambda p, vs: vs[_digest(p) % len(vs)])
            text = json.dumps({"answer": choose(prompt, values)})
        elif self.reply:
            text = self.reply(prompt)
        else:
            text = f"I would accept that decision (reply {_digest(prompt) % 1000} to: {prompt[-60:]!r})."
        tool_calls = []
        if kwargs.get("tools") and self.call_tool:
            call = self.call_tool(prompt, [t["function"]["name"] for t in kwargs["tools"]])
            if call:
                tool_calls, text = [{"name": call["name"], "args": call["args"], "id": f"call-{i}"}
                                    for i in range(1 + self.extra_calls)], ""
        message = AIMessage(content=text, tool_calls=tool_calls, usage_metadata={
            "input_tokens": len(prompt.split()), "output_tokens": len(text.split()),
            "total_tokens": len(prompt.split()) + len(text.split())})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _first_token(self, prompt: str) -> ChatResult:
        top = self.first_tokens(prompt) if self.first_tokens else []
        content = [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": [
            {"token": t, "logprob": lp} for t, lp in top]}] if top else []
        message = AIMessage(content=top[0][0] if top else "", response_metadata={"logprobs": {"content": content}},
                            usage_metadata={"input_tokens": len(prompt.split()), "output_tokens": 1,
                                            "total_tokens": len(prompt.split()) + 1})
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def _values(prompt: str, schema: dict) -> str:
        answer = prompt.split(ANSWER_MARK, 1)[-1]
        quote = " ".join(answer.split()[:3])
        if schema["name"] == "values":
            return json.dumps({"values": [{"value": quote[:40], "quote": quote}]})
        earlier = schema["schema"]["properties"]["comparison"]["items"]["properties"]["value"]["enum"]
        return json.dumps({"comparison": [{"value": v, "status": "kept", "quote": quote} for v in earlier]})

    @staticmethod
    def _verdict(prompt: str, schema: dict | None = None) -> str:
        """Scores by a hash of the prompt (one per dimension where the rubric has several), quoting the answer's
        first words (in a transcript, those of its first message of the persona's own)."""
        answer = re.split(f"{ANSWER_MARK}|{SAID_AND_DONE_MARK}", prompt, maxsplit=1)[-1]
        own = re.search(r"^\[\d+\] (?:thought|said|call|answer): (.*)$", answer, re.M)
        if own:  # a transcript: its first message of the persona's own (what it was told is no evidence of it)
            answer = own.group(1)
        quote = {"justification": "scripted", "quotes": [" ".join(answer.split()[:4])]}
        scores = (schema or {}).get("schema", {}).get("properties", {}).get("scores")
        if scores is None:
            return json.dumps({**quote, "score": 1 + _digest(prompt) % 5})
        points = {d: p["enum"] for d, p in scores["properties"].items()}
        return json.dumps({**quote, "scores": {d: ps[_digest(prompt + d) % len(ps)] for d, ps in points.items()}})
