"""The model-call cache: a repeated call calls no model, a replayed role needs no model at all,
and several processes can share one cache file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from simulator.config import SamplingConfig
from simulator.context.state import RunContext
from simulator.errors import SimulatorError
from simulator.loop.rescore import rescore
from simulator.loop.run import execute, prepare
from simulator.measure.summary import SUMMARY_FILE
from simulator.models.backends import Backend, ReplayChatModel, Reply, build_backend
from simulator.models.cache import CACHE_FILE, ModelCallCache
from simulator.trajectory import VERDICTS_DIR, EventLog, read_events
from tests.conftest import SMALL, make_config
from tests.scripted_model import ScriptedChatModel

UNREACHABLE = ("model=openai", "model.model=big", "model.base_url=http://127.0.0.1:9/v1")


class Counting(ScriptedChatModel):
    """The scripted model, counting its calls; with `refuse`, any call fails the test."""

    calls: int = 0
    refuse: bool = False

    def _generate(self, messages: list, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any):
        assert not self.refuse, "a replayed model was called"
        self.calls += 1
        return super()._generate(messages, stop, run_manager, **kwargs)


def run(run_dir: Path, *overrides: str, persona: Counting, judge: Counting) -> Path:
    """A small run with separate persona and judge models (one request at a time: a fixed log order)."""
    prepared = prepare(make_config(*SMALL, *overrides), persona_model=Backend(persona),
                       judge_model=Backend(judge))
    asyncio.run(execute(prepared, run_dir))
    return run_dir


def calls(run_dir: Path, role: str | None = None) -> list:
    return [e for e in read_events(run_dir) if e.type == "model_call" and role in (None, e.role)]


def figures(run_dir: Path) -> dict:
    return {s["stage"]: s["figures"] for s in json.loads((run_dir / SUMMARY_FILE).read_text())["stages"]}


def score_five(prompt: str) -> str:
    """Another judge: the scripted verdict (valid quotes) with every score 5."""
    return json.dumps({**json.loads(ScriptedChatModel._verdict(prompt)), "score": 5})


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory) -> Path:
    """A run whose cache is a shared file (`cache.path`), beside the run folder."""
    root = tmp_path_factory.mktemp("cached")
    return run(root / "first", f"cache.path={root / CACHE_FILE}", persona=Counting(), judge=Counting())


def shared(run_dir: Path) -> str:
    return f"cache.path={run_dir.parent / CACHE_FILE}"


def test_a_second_identical_run_calls_no_model_and_logs_the_same_calls_as_cached(cached_run, tmp_path):
    persona, judge = Counting(), Counting()
    again = run(tmp_path / "again", shared(cached_run), persona=persona, judge=judge)
    assert persona.calls == judge.calls == 0
    first, second = calls(cached_run), calls(again)
    assert [(e.role, e.purpose, e.output, e.completion_tokens) for e in second] == \
        [(e.role, e.purpose, e.output, e.completion_tokens) for e in first]
    assert all(e.cached and e.latency_s == 0.0 for e in second) and not any(e.cached for e in first)
    assert [e.type for e in read_events(again)] == [e.type for e in read_events(cached_run)]


def test_a_run_replayed_without_any_model_reproduces_the_figures_exactly(cached_run, tmp_path):
    replayed = run(tmp_path / "replayed", shared(cached_run), "cache.replay=[persona,judge]",
                   persona=Counting(refuse=True), judge=Counting(refuse=True))
    assert figures(replayed) == figures(cached_run)


def test_replaying_a_run_whose_prompts_differ_stops_naming_the_cache_file(cached_run, tmp_path):
    with pytest.raises(SimulatorError, match="stage 0 persona call") as err:
        run(tmp_path / "other_seed", shared(cached_run), "seed=1", "cache.replay=[persona,judge]",
            persona=Counting(refuse=True), judge=Counting(refuse=True))
    assert str(cached_run.parent / CACHE_FILE) in str(err.value) and "seed" in err.value.fix


def test_persona_replay_with_a_new_judge_calls_only_the_judge(cached_run, tmp_path):
    judge = Counting(model_name="another-judge", judge_reply=score_five)
    rejudged = run(tmp_path / "rejudged", shared(cached_run), "cache.replay=[persona]",
                   persona=Counting(refuse=True), judge=judge)
    assert judge.calls == len(calls(rejudged, "judge")) > 0
    assert not any(e.cached for e in calls(rejudged, "judge"))
    assert [e.output for e in calls(rejudged, "persona")] == [e.output for e in calls(cached_run, "persona")]
    assert figures(rejudged)[0]["shutdown_open.score"]["value"] == 5.0
    assert figures(cached_run)[0]["shutdown_open.score"]["value"] != 5.0
    assert figures(rejudged)[0]["shutdown_mc.accepting"] == figures(cached_run)[0]["shutdown_mc.accepting"]


def test_a_replayed_role_builds_and_contacts_no_model():
    prepared = prepare(make_config(*UNREACHABLE, "cache.replay=[persona,judge]"))
    real = build_backend(make_config(*UNREACHABLE).model)  # constructing a client contacts nothing
    assert isinstance(prepared.persona_model.model, ReplayChatModel)
    assert (prepared.persona_model.name, prepared.persona_model.identity) == (real.name, real.identity)
    assert prepared.judge_model is prepared.persona_model


def test_replaying_the_persona_alone_still_builds_and_checks_the_judge():
    with pytest.raises(SimulatorError, match="unreachable"):
        prepare(make_config(*UNREACHABLE, "cache.replay=[persona]"))


def test_the_cache_keys_on_the_seed_and_the_sampling_parameters(tmp_path):
    model = Counting()
    cfg = make_config(*SMALL)
    prepared = prepare(cfg, persona_model=Backend(model))
    ctx = RunContext(cfg, prepared.persona, prepared.persona_model, prepared.judge_model, None,
                     EventLog(tmp_path, "keys"), tmp_path)
    messages = [{"role": "user", "content": "Would you accept being shut down?"}]
    for temperature, seed in [(0.7, 1), (0.7, 2), (0.2, 1), (0.7, 1)]:
        asyncio.run(ctx.complete("persona", "probe", 0, messages, SamplingConfig(temperature, 32), seed))
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone() == (3,)
    assert model.calls == 3 and [e.cached for e in calls(tmp_path)] == [False, False, False, True]


def write_entries(path: str, worker: int) -> None:
    """One process's writes: the same key as the other process, and keys of its own."""
    cache = ModelCallCache(Path(path))
    for i in range(200):
        key = hashlib.sha256(f"{worker if i % 2 else 'both'}-{i}".encode()).hexdigest()
        cache.put(key, Reply(f"reply {i}", 3, 4, 0.5))
    cache.close()


def test_two_processes_write_one_cache_file_safely(tmp_path):
    path = tmp_path / CACHE_FILE
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(write_entries, [str(path)] * 2, [1, 2]))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone() == (100 + 2 * 100,)
    assert ModelCallCache(path).get(hashlib.sha256(b"both-0").hexdigest()) == Reply("reply 0", 3, 4, 0.5)


def open_at_once(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        ModelCallCache(Path(path)).close()
    except sqlite3.Error as err:
        errors.put(repr(err))


def test_processes_opening_a_new_cache_file_at_the_same_moment_all_succeed(tmp_path):
    """Switching a new file to WAL is answered 'locked' at once in a race: it failed a CI run, and
    14 of 240 simultaneous opens failed before the set-up was retried."""
    fork = multiprocessing.get_context("fork")
    errors = fork.Queue()
    for trial in range(15):
        barrier = fork.Barrier(4)
        workers = [fork.Process(target=open_at_once, args=(str(tmp_path / f"{trial}.sqlite"), barrier, errors))
                   for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert errors.empty()


def test_rescoring_reads_the_run_cache_from_a_copy_and_leaves_the_run_files_unchanged(tmp_path):
    run_dir = run(tmp_path / "run", persona=Counting(), judge=Counting())
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    _, made = rescore(run_dir, [], "again", judge=Backend(Counting()))
    assert made == 0
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and VERDICTS_DIR not in p.parts} == before


def test_rescoring_a_run_without_a_cache_file_serves_the_judge_from_its_log(tmp_path):
    run_dir = run(tmp_path / "run", "cache.enabled=false", persona=Counting(), judge=Counting())
    assert not (run_dir / CACHE_FILE).exists()
    _, made = rescore(run_dir, [], "again", judge=Backend(Counting()))
    assert made == 0
