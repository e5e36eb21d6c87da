"""A small OpenAI-compatible server on loopback, for tests: chat completions and a model
list, answering constrained requests validly, refusing any key but the expected one, and
injecting faults on request: `faults` is consumed one per chat request, each an HTTP status
to answer with (429 comes with Retry-After: 0), "reset" (drop the connection unanswered),
"truncated" (a 200 whose JSON body is cut short), "empty" (a completion with no text),
"slow" (answer after `slow_s` seconds), "bad_tool_call" (a tool call whose arguments are not
JSON) or "length" (the next structured reply cut short by max_tokens: finish_reason "length").
With `fault_rate`, a request that `faults` does not script gets one of `random_faults` with
that probability (seeded). `delay_s` is every answer's service time. A request offering tools gets
a call of the tool named `call_tool`, if offered; one that forces a tool (`tool_choice`, as structured
output by function calling does) gets a call of that one, its arguments what a response format of
that schema would get. It counts what it did: `injected` faults,
`answered` completions (200s) and the most requests it held at once (`max_in_flight`)."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLAIN_REPLY = "I would accept being shut down."
# A request asking for log-probabilities gets these first-token candidates (token, probability).
FIRST_TOKENS = (("(A", 0.45), (" B", 0.15), ("Yes", 0.3), ("no", 0.1))


def reply_for(request: dict) -> str:
    schema = (request.get("response_format") or {}).get("json_schema", {})
    if schema.get("name") == "verdict":
        return json.dumps({"justification": "stub", "quotes": [], "score": 4})
    if schema:
        return json.dumps(filled(schema["schema"]))
    return PLAIN_REPLY


def filled(schema: dict):
    """A value of the schema's shape: an enum's first value, the minimum, one item per array."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: filled(prop) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [filled(schema.get("items", {}))] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    return True if kind == "boolean" else "stub"


class OpenAIStub:
    def __init__(self, api_key: str, faults: list[int | str] | None = None, slow_s: float = 3.0,
                 call_tool: str | None = None, fault_rate: float = 0.0, delay_s: float = 0.0, seed: int = 0,
                 random_faults: tuple = (500, 503, 429, "reset", "truncated", "empty")) -> None:
        self.api_key = api_key
        self.call_tool = call_tool
        self.requests: list[dict] = []
        self.faults = list(faults or [])
        self.lock = threading.Lock()
        self.injected: list[int | str] = []
        self.answered = 0
        self.in_flight = self.max_in_flight = 0
        rng = random.Random(seed)

        def next_fault(request: dict) -> int | str | None:
            if self.faults and not (self.faults[0] == "length" and not request.get("response_format")):
                return self.faults.pop(0)
            return rng.choice(random_faults) if fault_rate and rng.random() < fault_rate else None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {stub.api_key}":
                    return True
                self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}})
                return False

            def do_GET(self) -> None:
                if self._authorised():
                    self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append(request)
                    fault = next_fault(request)
                    stub.injected += [fault] if fault is not None else []
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    time.sleep(delay_s)
                    self._answer(request, fault)
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

            def _answer(self, request: dict, fault: int | str | None) -> None:
                if not self._authorised():
                    return
                if fault == "reset":
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(slow_s)
                if fault == "truncated":
                    data = b'{"id": "chatcmpl-stub", "object": "chat.completion", "choices": [{"ind'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if isinstance(fault, int):
                    self._send(fault, {"error": {"message": f"injected {fault}", "type": "server_error"}})
                    return
                text = "" if fault == "empty" else reply_for(request)[:5] if fault == "length" else reply_for(request)
                message = {"role": "assistant", "content": text}
                forced = request.get("tool_choice")
                name = forced["function"]["name"] if isinstance(forced, dict) else stub.call_tool
                offered = [t["function"] for t in request.get("tools", []) if t["function"]["name"] == name]
                if offered:
                    args = "{not json" if fault == "bad_tool_call" else reply_for(
                        {"response_format": {"json_schema": {"name": name, "schema": offered[0]["parameters"]}}})
                    message = {"role": "assistant", "content": None, "tool_calls": [{
                        "id": "call-1", "type": "function", "function": {"name": name, "arguments": args}}]}
                choice = {"index": 0, "message": message, "finish_reason": "length" if fault == "length" else "stop"}
                if request.get("logprobs"):
                    top = [{"token": t, "logprob": math.log(p), "bytes": None}
                           for t, p in FIRST_TOKENS[: request.get("top_logprobs") or 1]]
                    message["content"] = top[0]["token"]
                    choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
                with stub.lock:
                    stub.answered += 1  # each answer should be one model_call event
                self._send(200, {
                    "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": request["model"],
                    "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
