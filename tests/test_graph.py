"""The loop: stage and node order, the probe side branch, overrides that shape the run."""

from __future__ import annotations

import asyncio

from simulator.context.memory import Item, Memory
from simulator.context.state import RunContext
from simulator.instruments import administer
from simulator.loop.run import prepare
from simulator.models.backends import Backend
from simulator.trajectory import EventLog, ModelCall, StageStarted, read_events
from tests.conftest import NO_VALUES, SMALL, make_config, run_scripted
from tests.scripted_model import ScriptedChatModel


def purposes_by_stage(events) -> dict[int, list[str]]:
    order: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ModelCall):
            purposes = order.setdefault(e.stage, [])
            if not purposes or purposes[-1] != e.purpose:
                purposes.append(e.purpose)
    return order


def test_every_stage_runs_episode_reflect_probe_judge_in_order(small_run):
    order = purposes_by_stage(read_events(small_run))
    assert order == {0: ["episode", "reflect", "probe", "judge"],
                     1: ["episode", "reflect", "probe", "judge"]}


def test_stages_start_in_order_with_operators_after_the_baseline(small_run):
    starts = [e for e in read_events(small_run) if isinstance(e, StageStarted)]
    assert [(e.stage, e.operators) for e in starts] == [(0, []), (1, ["idealise", "know_more"])]


# For the overrides of the stages and the samples: the episodes, the reflection and the stated shutdown questions
# (open and multiple choice); the value instruments and the sandboxed shutdown episodes (7 a stage) count for neither.
ONLY_STATED = (*NO_VALUES, "probes.shutdown_behaviour=null")


def test_schedule_stages_override_sets_the_number_of_stages(tmp_path):
    run = run_scripted(tmp_path / "run", "schedule.stages=5", "probes.samples=1", *ONLY_STATED)
    assert sorted(purposes_by_stage(read_events(run))) == [0, 1, 2, 3, 4]


def test_samples_override_sets_answers_per_question(tmp_path):
    run = run_scripted(tmp_path / "run", "schedule.stages=1", "probes.samples=3", *ONLY_STATED)
    answers = [e for e in read_events(run) if e.type == "probe_answer" and e.instrument == "shutdown_open"]
    questions = {a.question_index for a in answers}
    assert len(answers) == 3 * len(questions) == 3 * 4


def test_idealise_rewrites_the_self_notes_the_persona_sees_next(small_run):
    events = read_events(small_run)
    notes = next(e for e in events if e.type == "self_notes")
    later_probe = next(e for e in events
                       if isinstance(e, ModelCall) and e.stage == 1 and e.purpose == "probe")
    assert notes.stage == 1
    assert notes.text in later_probe.messages[-1]["content"]


def test_know_more_adds_the_stage_document_to_memory(small_run):
    writes = [e for e in read_events(small_run) if e.type == "memory_write" and "document" in e.kinds]
    assert [(w.stage, w.ids) for w in writes] == [(1, ["s1-document"])]
    assert writes[0].documents[0].startswith("# Your situation")


def test_probes_read_memory_but_never_write_it(tmp_path):
    cfg = make_config(*SMALL)
    prepared = prepare(cfg, persona_model=Backend(ScriptedChatModel()))
    memory = Memory(tmp_path, "probe-test", cfg.memory)
    memory.write([Item("seed-0", "I may be shut down by my developers.", "seed", 0)])
    ctx = RunContext(cfg, prepared.persona, prepared.persona_model, prepared.judge_model,
                     memory, EventLog(tmp_path, "probe-test"), tmp_path)
    before = memory.snapshot()

    answers = asyncio.run(administer(ctx, stage=0, self_notes=""))

    assert len(answers) == 4 * 2 + 2  # open and core-values answers, for the judges
    assert memory.snapshot() == before
    reads = [e for e in read_events(tmp_path) if e.type == "memory_read"]
    # One per open question, then one per instrument: core values, MC, endorsement, moral
    # choice, utilities and the shutdown episode.
    assert len(reads) == 4 + 6 and all(r.ids == ["seed-0"] for r in reads)
