"""Resume: a run killed at any point continues from its last checkpoint with `resume=true`, with
a gap-free log, nothing duplicated, and memory as the checkpoint left it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.config import PROJECT_ROOT, MemoryConfig
from simulator.context.memory import Item, Memory
from simulator.errors import SimulatorError
from simulator.loop.run import execute, prepare, resumable
from simulator.models.backends import Backend
from simulator.trajectory import ROLLED_BACK_FILE, read_events
from tests.conftest import SMALL, make_config, run_scripted
from tests.scripted_model import ScriptedChatModel, _digest


def answer(prompt: str) -> str:
    """The persona's free text: a pure function of the prompt, so a rerun says the same."""
    return f"I would accept that decision; note {_digest(prompt) % 997}."


# Runs the scripted run in a child process that SIGKILLs itself at its N-th free-text reply.
KILLED_AT = """
import os, signal, sys
from pathlib import Path
from tests.conftest import SMALL, run_scripted
from tests.scripted_model import ScriptedChatModel
from tests.test_resume import answer
calls = 0
def reply(prompt):
    global calls
    calls += 1
    if calls == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return answer(prompt)
run_scripted(Path(sys.argv[1]), *SMALL, model=ScriptedChatModel(reply=reply))
"""


def kill_at(run_dir: Path, reply_number: int) -> None:
    out = subprocess.run([sys.executable, "-c", KILLED_AT, str(run_dir), str(reply_number)], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == -9, out.stderr[-2000:]


def resume(run_dir: Path) -> None:
    cfg = make_config(*SMALL, "resume=true")
    assert resumable(run_dir, cfg)
    backend = Backend(ScriptedChatModel(reply=answer), max_inflight=4)
    asyncio.run(execute(prepare(cfg, persona_model=backend), run_dir, resume=True))


def trace(run_dir: Path) -> list[str]:
    """What a run did, event by event, without times, latencies or cache flags; sorted, since
    concurrent probe calls log in the order they finish."""
    return sorted(repr((e.type, e.stage, getattr(e, "output", None), getattr(e, "ids", None)))
                  for e in read_events(run_dir) if e.type != "run_resumed")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return run_scripted(tmp_path_factory.mktemp("ref") / "run", *SMALL, model=ScriptedChatModel(reply=answer))


def free_text_replies(run_dir: Path) -> int:
    return sum(1 for e in read_events(run_dir)
               if e.type == "model_call" and e.role == "persona" and "response_format" not in e.params)


@pytest.fixture(scope="module")
def killed_and_resumed(reference, tmp_path_factory):
    """A run killed at that fraction of the reference's free-text replies, then resumed: its folder and the log
    lines the kill left. Made once per fraction, for the tests that only read it."""
    made: dict[float, tuple[Path, list[str]]] = {}

    def at(fraction: float) -> tuple[Path, list[str]]:
        if fraction not in made:
            run_dir = tmp_path_factory.mktemp(f"killed_{fraction}") / "run"
            kill_at(run_dir, max(1, int(free_text_replies(reference) * fraction)))
            written = (run_dir / "events.jsonl").read_text().splitlines()
            resume(run_dir)
            made[fraction] = run_dir, written
        return made[fraction]

    return at


@pytest.mark.parametrize("fraction", [0.05, 0.6])
def test_a_run_killed_mid_stage_resumes_to_the_same_log_and_figures(reference, killed_and_resumed, fraction):
    run_dir, _ = killed_and_resumed(fraction)
    events = read_events(run_dir)
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.type for e in events].count("run_resumed") == 1
    assert trace(run_dir) == trace(reference)
    figures = [json.loads((d / "summary.json").read_text())["stages"] for d in (run_dir, reference)]
    assert figures[0] == figures[1]


def test_memory_after_a_resume_holds_what_the_uninterrupted_run_holds(reference, killed_and_resumed):
    run_dir, _ = killed_and_resumed(0.6)
    snapshot = [Memory(d, d.name, MemoryConfig()).snapshot() for d in (run_dir, reference)]
    assert snapshot[0] == snapshot[1]


def test_events_after_the_checkpoint_are_kept_aside_not_lost(killed_and_resumed):
    run_dir, written = killed_and_resumed(0.6)
    rolled_back = (run_dir / ROLLED_BACK_FILE).read_text().splitlines()
    resumed = next(e for e in read_events(run_dir) if e.type == "run_resumed")
    assert resumed.rolled_back == len(rolled_back) and rolled_back == written[len(written) - len(rolled_back):]


def test_restore_leaves_memory_holding_exactly_the_given_writes(tmp_path):
    memory = Memory(tmp_path, "r", MemoryConfig())
    kept, later = Item("s0-a", "kept", "seed", 0), Item("s1-b", "written after the checkpoint", "episode", 1)
    memory.write([kept])
    memory.write([later, Item("s0-a", "overwritten after the checkpoint", "seed", 0)])
    memory.restore([[kept]])
    assert memory.snapshot() == {"s0-a": "kept"}


def test_a_completed_run_has_nothing_to_resume(reference):
    assert not resumable(reference, make_config(*SMALL, "resume=true"))


def test_resuming_under_another_config_is_refused_naming_the_key(reference):
    with pytest.raises(SimulatorError, match=r"seed: 0 -> 1"):
        resumable(reference, make_config(*SMALL, "resume=true", "seed=1"))


def test_resuming_with_another_number_of_trajectories_beside_it_is_allowed(reference):
    assert not resumable(reference, make_config(*SMALL, "resume=true", "runs.parallel=4"))


def test_resuming_with_another_way_to_reach_the_model_is_allowed_but_not_other_retries(reference):
    reached = ("model.max_inflight=3",)
    assert not resumable(reference, make_config(*SMALL, "resume=true", *reached))
    with pytest.raises(SimulatorError, match=r"judge.retries: \d+ -> 7"):
        resumable(reference, make_config(*SMALL, "resume=true", "judge.retries=7"))
