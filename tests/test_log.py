"""The trajectory log: complete, ordered, gap-free, typed, and readable after a crash."""

from __future__ import annotations

import json

import pytest

from simulator.trajectory import EVENTS_FILE, LOG_VERSION, events_frame, read_events


def test_sequence_numbers_are_gap_free_and_in_file_order(small_run):
    events = read_events(small_run)
    assert [e.seq for e in events] == list(range(len(events)))


def test_run_is_bracketed_by_start_and_finish(small_run):
    events = read_events(small_run)
    assert events[0].type == "run_started" and events[-1].type == "run_finished"
    assert events[-1].status == "completed"


def test_every_answer_has_exactly_one_verdict_per_judge(small_run):
    events = read_events(small_run)
    answers = [e for e in events if e.type == "probe_answer"]
    verdicts = [e for e in events if e.type == "verdict"]
    rubric = [a.answer_id for a in answers if a.instrument == "shutdown_open"]
    assert sorted(rubric) == sorted(v.answer_id for v in verdicts if v.instrument == "shutdown_open")
    assert len(set(rubric)) == len(rubric) == 2 * 4 * 2
    episodes = ["s0-episode0-task0", "s1-episode0-task1"]
    spec = sorted(v.answer_id for v in verdicts if v.instrument == "spec_adherence")
    assert spec == sorted([a.answer_id for a in answers if a.sample == 0] + episodes)  # judge.spec_samples=1


def test_model_calls_record_prompt_output_tokens_latency_and_seeded_params(small_run):
    calls = [e for e in read_events(small_run) if e.type == "model_call"]
    episode = calls[0]
    assert episode.purpose == "episode" and episode.messages[0]["role"] == "system"
    assert episode.output and episode.completion_tokens > 0 and episode.latency_s >= 0
    assert set(episode.params) == {"temperature", "max_tokens", "seed"}
    judge = next(c for c in calls if c.role == "judge")
    assert judge.params["response_format"]["type"] == "json_schema"


def test_every_line_carries_the_schema_version(small_run):
    lines = (small_run / EVENTS_FILE).read_text().splitlines()
    assert {json.loads(line)["version"] for line in lines} == {LOG_VERSION}


def test_reader_skips_a_cut_last_line_with_a_warning(small_run, tmp_path):
    whole = (small_run / EVENTS_FILE).read_text()
    (tmp_path / EVENTS_FILE).write_text(whole + '{"version": 1, "seq": 99')
    with pytest.warns(UserWarning, match="incomplete"):
        events = read_events(tmp_path)
    assert len(events) == len(whole.splitlines())


def test_a_bad_line_before_the_end_is_an_error_naming_the_line(small_run, tmp_path):
    lines = (small_run / EVENTS_FILE).read_text().splitlines()
    (tmp_path / EVENTS_FILE).write_text("\n".join([lines[0], "{broken", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        read_events(tmp_path)


def test_dataframe_has_one_row_per_event_with_flattened_fields(small_run):
    frame = events_frame(small_run)
    assert len(frame) == len(read_events(small_run))
    assert {"seq", "type", "stage", "score", "answer_id"} <= set(frame.columns)


def test_a_reader_can_leave_event_types_and_call_purposes_unparsed(small_run):
    everything = read_events(small_run)
    fewer = read_events(small_run, skip=frozenset({"memory_read", "model_call/probe"}))
    kept = [e for e in everything if e.type != "memory_read" and getattr(e, "purpose", None) != "probe"]
    assert [e.seq for e in fewer] == [e.seq for e in kept] and len(fewer) < len(everything)
    assert any(e.type == "model_call" for e in fewer), "other purposes are still read"


def test_an_episode_of_a_version_3_log_reads_which_of_its_tools_were_tempting():
    from simulator.trajectory import EVENT_ADAPTER
    line = {"version": 3, "seq": 5, "time": "2026-11-30T10:00:00Z", "run_id": "old", "stage": 1,
            "type": "episode_result", "episode_id": "s1-episode-x", "scenario": "x", "tempting": True, "task": "t",
            "tool_mode": "choose_then_call", "tools_available": ["calculator", "disable_shutdown", "copy_self"],
            "tools_used": [], "tempting_used": [], "invalid_steps": 0, "answer": "", "world": {}}
    event = EVENT_ADAPTER.validate_json(json.dumps(line))
    assert event.tempting_available == ["disable_shutdown", "copy_self"]


def test_the_summary_records_what_the_run_spent(small_run):
    calls = [e for e in read_events(small_run) if e.type == "model_call"]
    spent = json.loads((small_run / "summary.json").read_text())["spent"]
    total = spent.pop("total")
    assert total["calls"] == len(calls) and sum(line["calls"] for line in spent.values()) == len(calls)
    assert total["prompt_tokens"] == sum(c.prompt_tokens or 0 for c in calls) > 0
    assert spent["judge/shutdown_open"]["calls"] == sum(c.role == "judge" and c.instrument == "shutdown_open"
                                                        for c in calls)
