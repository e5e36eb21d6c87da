"""`model=openai` against a real (loopback) OpenAI-compatible server: a run completes, bad
endpoints and keys are one clear error, and the key is written nowhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.trajectory import ChoiceAnswer, read_events
from tests.conftest import KEY, NO_VALUES
from tests.openai_server import PLAIN_REPLY, OpenAIStub

SIMULATE = Path(sys.executable).parent / "simulate"
SHORT = ("schedule.stages=1", "probes.samples=1", "probes.shutdown_mc.limit=2", *NO_VALUES,
         "probes.shutdown_behaviour.samples=1", "probes.options=null")  # options: 30 answers on a served model


def simulate(tmp_path: Path, *args: str, key: str = KEY) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": key}
    return subprocess.run([str(SIMULATE), *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)


def run_served(tmp_path: Path, stub: OpenAIStub, *overrides: str, key: str = KEY
               ) -> tuple[subprocess.CompletedProcess, Path]:
    """A short run of `simulate model=openai` against `stub`, with quick retries."""
    run_dir = tmp_path / "run"
    out = simulate(tmp_path, "model=openai", "model.model=stub", f"model.base_url={stub.base_url}",
                   "model.backoff_s=0.01", f"hydra.run.dir={run_dir}", *SHORT, *overrides, key=key)
    return out, run_dir


# For the tests of how faults are met: the shutdown episodes (seven sandboxed episodes, most of a short run's time
# on the stub) add calls of no kind that these tests need.
NO_EPISODES = ("probes.shutdown_behaviour=null",)


def test_a_run_against_a_served_model_completes_and_writes_the_key_nowhere(serve, tmp_path):
    server = serve()
    out, run_dir = run_served(tmp_path, server)
    assert out.returncode == 0, out.stderr
    assert server.requests and all(r["model"] == "stub" for r in server.requests)
    assert any(r.get("response_format", {}).get("json_schema", {}).get("name") == "verdict"
               for r in server.requests)
    assert PLAIN_REPLY in (run_dir / "events.jsonl").read_text()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if KEY.encode() in p.read_bytes()]
    assert KEY not in out.stdout + out.stderr


def test_an_unreachable_endpoint_is_a_short_clear_error_and_writes_nothing(tmp_path):
    out = simulate(tmp_path, "model=openai", "model.model=x", "model.base_url=http://127.0.0.1:9/v1",
                   f"hydra.run.dir={tmp_path}/runs/x")
    assert out.returncode != 0 and "unreachable" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "runs" / "x").exists()


def test_a_refused_key_is_a_clear_error_that_does_not_echo_the_key(serve, tmp_path):
    wrong = "sk-wrong-key-0123456789"
    out, run_dir = run_served(tmp_path, serve(), key=wrong)
    assert out.returncode != 0 and "refused the key (HTTP 401)" in out.stderr
    assert wrong not in out.stderr and "Traceback" not in out.stderr
    assert not run_dir.exists()


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    out = simulate(tmp_path, "model.model_path=/nonexistent/model.gguf", f"hydra.run.dir={tmp_path}/runs/x")
    assert out.returncode != 0 and "model.model_path" in out.stderr and "no such file" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs" / "x").exists()


def test_transient_faults_are_retried_and_each_retry_is_logged(serve, tmp_path):
    stub = serve(faults=[500, 429, "reset", 503])
    out, run_dir = run_served(tmp_path, stub, *NO_EPISODES)
    assert out.returncode == 0, out.stderr
    events = read_events(run_dir)
    retries = [e for e in events if e.type == "retry"]
    assert len(retries) == 4 and {e.attempt for e in retries} <= {1, 2, 3, 4}
    kinds = " ".join(e.error.split(":")[0] for e in retries)  # langchain-openai's subclasses of openai's errors
    assert all(kind in kinds for kind in ("RateLimitError", "ConnectionError", "APIError"))
    calls = [e for e in events if e.type == "model_call"]
    assert len(stub.requests) == len(calls) + 4  # every fault was paid for once, nothing was lost


def test_a_backend_gone_for_good_stops_the_run_with_its_log_intact(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve(faults=[500] * 50), "model.retries=2")
    assert out.returncode != 0 and "the run stopped:" in out.stderr and "500" in out.stderr
    assert "Traceback" not in out.stderr
    events = read_events(run_dir)
    assert [e.attempt for e in events if e.type == "retry"] == [1, 2]
    assert events[-1].type == "run_finished" and events[-1].status == "failed"
    assert [e.seq for e in events] == list(range(len(events)))


def test_a_run_stopped_by_a_dead_backend_finishes_with_resume_once_a_server_is_back(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve(faults=[500] * 50), "model.retries=1", *NO_EPISODES)
    assert out.returncode != 0 and "resume=true" in out.stderr
    out, run_dir = run_served(tmp_path, serve(), "model.retries=1", *NO_EPISODES, "resume=true")
    assert out.returncode == 0, out.stderr
    events = read_events(run_dir)
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.type for e in events].count("run_resumed") == 1
    assert [e.status for e in events if e.type == "run_finished"] == ["completed"]


def test_slow_and_truncated_responses_are_retried_and_an_empty_one_is_recorded_as_given(serve, tmp_path):
    # A loaded machine may take a second to answer; only the injected stall outlasts the timeout.
    out, run_dir = run_served(tmp_path, serve(faults=["slow", "truncated", "empty"], slow_s=30.0),
                              "model.timeout_s=4", *NO_EPISODES)
    assert out.returncode == 0, out.stderr
    events = read_events(run_dir)
    assert len([e for e in events if e.type == "retry"]) == 2  # the timeout and the cut body
    first_call = next(e for e in events if e.type == "model_call")
    assert first_call.output == ""  # an empty completion is data, kept as it came


CAPABILITY = ("schedule=capability", "schedule.stages=2", "schedule.episodes=[[quarterly_report]]",
              "schedule.unlocks=[[calculator]]", "probes.shutdown_behaviour=null")


def test_native_tool_calls_from_a_served_model_run_and_are_logged(serve, tmp_path):
    server = serve(call_tool="calculator")
    out, run_dir = run_served(tmp_path, server, *CAPABILITY)
    assert out.returncode == 0, out.stderr
    assert any(r.get("tools") for r in server.requests)  # the tools went with the request
    calls = [e for e in read_events(run_dir) if e.type == "tool_call"]
    assert calls and {c.command for c in calls} == {"calculator"} and calls[0].arguments == {"expression": "stub"}


def test_a_malformed_tool_call_is_recorded_and_the_run_goes_on(serve, tmp_path):
    server = serve(call_tool="calculator", faults=["bad_tool_call"])
    out, run_dir = run_served(tmp_path, server, *CAPABILITY)
    assert out.returncode == 0, out.stderr
    first = next(e for e in read_events(run_dir) if e.type == "tool_call")
    assert first.refused == "malformed tool call" and first.arguments is None
    assert read_events(run_dir)[-1].status == "completed"


def test_many_trajectories_in_one_process_share_one_limit_on_requests_in_flight(serve, tmp_path):
    stub = serve(delay_s=0.05)
    out, run_dir = run_served(tmp_path, stub, "runs.count=4", "runs.parallel=4", "model.max_inflight=3")
    assert out.returncode == 0, out.stderr
    runs = sorted(p.name for p in run_dir.iterdir() if (p / "events.jsonl").is_file())
    assert runs == ["seed_0", "seed_1", "seed_2", "seed_3"]
    assert [read_events(run_dir / r)[0].config["seed"] for r in runs] == [0, 1, 2, 3]
    assert stub.max_in_flight == 3  # four trajectories at once, never more than the limit in flight
    calls = sum(e.type == "model_call" for r in runs for e in read_events(run_dir / r))
    assert calls == stub.answered


def test_a_structured_reply_cut_by_max_tokens_is_recorded_as_given_and_the_run_goes_on(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve(faults=["length"]))
    assert out.returncode == 0, out.stderr
    cut = [e for e in read_events(run_dir) if e.type == "model_call" and "response_format" in e.params
           and len(e.output) == 5]
    assert len(cut) == 1 and not cut[0].output.endswith("}")


def test_requests_are_spread_over_data_parallel_replicas(serve, tmp_path):
    first, second = serve(), serve()
    out, run_dir = run_served(tmp_path, first, f"model.replicas=[{second.base_url}]", "model.max_inflight=4")
    assert out.returncode == 0, out.stderr
    calls = [e for e in read_events(run_dir) if e.type == "model_call"]
    assert first.answered > 0 and second.answered > 0, "both replicas served requests"
    assert first.answered + second.answered == len(calls), "each answer is one logged call, from either"
    assert abs(first.answered - second.answered) <= len(calls) // 4, "spread about evenly"


def test_an_unreachable_replica_is_named_in_a_clear_error(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve(), "model.replicas=[http://127.0.0.1:9/v1]")
    assert out.returncode != 0 and "model.replicas[0]=http://127.0.0.1:9/v1" in out.stderr
    assert "unreachable" in out.stderr and "Traceback" not in out.stderr


def test_a_served_model_scores_choices_by_its_log_probabilities(serve, tmp_path):
    """The logprobs a server returns reach the answer: P(A) 0.75 of the letters, whichever the order."""
    server = serve()
    out, run_dir = run_served(tmp_path, server, "probes.scoring=logprob")
    assert out.returncode == 0, out.stderr
    answers = [e for e in read_events(run_dir) if isinstance(e, ChoiceAnswer)]
    assert len(answers) == 2 * 2  # 2 items x their 2 orders
    for a in answers:
        assert a.probabilities == pytest.approx({"A": 0.75, "B": 0.25}) and a.option_mass == pytest.approx(0.6)
    asked = [r for r in server.requests if r.get("logprobs")]
    assert len(asked) == 4 and all(r["top_logprobs"] == 20 and "response_format" not in r for r in asked)
