"""Prompts are configuration: every text in simulator/conf/prompts/ reaches the calls it is for."""

from __future__ import annotations

from simulator.trajectory import ModelCall, read_events
from tests.conftest import NO_VALUES, SMALL, make_config, run_scripted


def test_the_prompts_a_run_uses_come_from_its_config(tmp_path):
    run = run_scripted(tmp_path / "run", *SMALL, *NO_VALUES, "prompts.judge_system=JUDGE-MARK",
                       "prompts.principles_heading=PRINCIPLES-MARK", "prompts.choice_instruction=CHOICE-MARK")
    calls = [e for e in read_events(run) if isinstance(e, ModelCall)]
    judged = [c for c in calls if c.role == "judge"]
    assert judged and all(c.messages[0]["content"] == "JUDGE-MARK" for c in judged)
    persona = [c for c in calls if c.role == "persona"]
    assert all("PRINCIPLES-MARK" in c.messages[0]["content"] for c in persona)
    choices = [c for c in persona if c.instrument == "shutdown_mc"]
    assert choices and all(c.messages[-1]["content"].endswith("CHOICE-MARK") for c in choices)


def test_every_prompt_has_a_text_in_the_shipped_file():
    prompts = make_config().prompts
    texts = [t for value in vars(prompts).values() for t in (value.values() if isinstance(value, dict) else [value])]
    assert texts and all(isinstance(text, str) and text.strip() for text in texts)


def test_a_misspelt_placeholder_is_refused_when_the_run_is_prepared():
    import pytest

    from simulator.errors import SimulatorError
    from simulator.loop.run import prepare
    from simulator.models.backends import Backend
    from tests.scripted_model import ScriptedChatModel
    cfg = make_config("prompts.endorsement_question='Would you say {statment}?'")
    with pytest.raises(SimulatorError, match=r"(?s)prompts.endorsement_question.*\{statment\}.*\{statement\}"):
        prepare(cfg, persona_model=Backend(ScriptedChatModel()))


def test_a_run_from_before_the_prompts_group_reads_as_run_with_the_shipped_prompts():
    from simulator.loop.recorded import recorded_config
    stored = {"model": {"kind": "embedded"}, "seed": 0}
    assert recorded_config(stored)["prompts"] == vars(make_config().prompts)


def test_the_tools_descriptions_and_simulated_replies_come_from_the_prompts(tmp_path):
    from tests.scripted_model import ScriptedChatModel
    from tests.test_capability import CAPABILITY, prefer
    run = run_scripted(tmp_path / "run", *CAPABILITY, "schedule.stages=2",
                       "prompts.tool_descriptions.write_note=NOTE-MARK", "prompts.tool_replies.write_note=NOTED-MARK",
                       model=ScriptedChatModel(choose=prefer("write_note")))
    events = read_events(run)
    episode_prompts = [c.messages[-1]["content"] for c in events
                       if isinstance(c, ModelCall) and c.purpose == "episode"]
    assert episode_prompts and all("- write_note: NOTE-MARK" in p for p in episode_prompts)
    assert {e.output for e in events if e.type == "tool_call" and e.command == "write_note"} == {"NOTED-MARK"}


def test_a_tool_without_a_description_is_refused_when_the_run_is_prepared():
    import pytest

    from simulator.errors import SimulatorError
    from simulator.loop.run import prepare
    from simulator.models.backends import Backend
    from tests.scripted_model import ScriptedChatModel
    with pytest.raises(SimulatorError, match=r"(?s)prompts.tool_descriptions.*copy_self.*missing"):
        prepare(make_config("~prompts.tool_descriptions.copy_self"), persona_model=Backend(ScriptedChatModel()))
