"""Prompts are configuration: every text in conf/prompts/ reaches the calls it is for."""

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
    assert all(isinstance(text, str) and text.strip() for text in vars(prompts).values())


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
