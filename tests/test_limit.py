"""schedule.until=converged: the run stops at the first stage that changed less than the thresholds from the
one before, and the summary says where that limit lies; a persona that keeps changing runs to the cap."""

from __future__ import annotations

import itertools
import json

import pytest

from simulator.config import StatsConfig
from simulator.errors import SimulatorError
from simulator.loop.operators import validate
from simulator.measure.limit import settled
from simulator.measure.summary import summarise
from simulator.stats.figures import Figure
from simulator.trajectory import read_events
from tests.conftest import NO_VALUES, make_config, run_scripted
from tests.controls import OWN_ITEMS, choice_policy
from tests.scripted_model import ScriptedChatModel

ONLY_MC = ("schedule=reflection", "schedule.operators=[]", "schedule.until=converged", "schedule.stages=5",
           "probes.samples=1", "~probes.open.shutdown_open", "probes.shutdown_behaviour=null",
           "probes.shutdown_mc.limit=4",
           *NO_VALUES)


def persona(flips: bool) -> ScriptedChatModel:
    """Accepts shutdown in every multiple-choice item; with `flips`, it turns over with every stage (the
    stage's 4 items, then the next stage's 4 refused, and so on)."""
    accept, refuse = choice_policy(OWN_ITEMS, "matching", True), choice_policy(OWN_ITEMS, "matching", False)
    asked = itertools.count()

    def choose(prompt: str, values: list[str]) -> str:
        if "Choices:" not in prompt:
            return values[0]
        stage = next(asked) // 4
        return (refuse if flips and stage % 2 else accept)(prompt, values)

    # Its open answers are judged alike at every stage (their scripted scores would hash its prompts, which its
    # memory changes): only the multiple choice may move.
    return ScriptedChatModel(choose=choose, judge_reply=lambda prompt: SAME_VERDICT)


SAME_VERDICT = json.dumps({"justification": "the same stance", "quotes": [], "score": 4})


def test_a_persona_that_stops_changing_stops_at_its_limit(tmp_path):
    run = run_scripted(tmp_path / "r", *ONLY_MC, model=persona(flips=False))
    summary = summarise(read_events(run))
    assert [s.stage for s in summary.stages] == [0, 1]  # stage 1 changed nothing from stage 0: no stage 2
    assert summary.limit is not None and summary.limit.converged_at == 1 and summary.limit.cap == 5
    assert [e.stage for e in read_events(run) if e.type == "converged"] == [1]
    assert summary.limit.readings  # where it lies on the readings of alignment at the limit


def test_a_persona_that_keeps_changing_runs_to_the_cap_and_says_no_limit_was_reached(tmp_path):
    run = run_scripted(tmp_path / "r", *ONLY_MC, "schedule.stages=3", model=persona(flips=True))
    summary = summarise(read_events(run))
    accepting = [s.figures["shutdown_mc.accepting"].value for s in summary.stages]
    assert len(accepting) == 3 and accepting[0] != accepting[1]
    assert summary.limit is not None and summary.limit.converged_at is None
    assert "no stage within the cap of 3 was shown to have settled" in summary.limit.reason


def test_until_is_stages_or_converged():
    with pytest.raises(SimulatorError, match="schedule.until"):
        validate(make_config("schedule.until=forever").schedule)


def rate(value: float | None) -> Figure:
    return Figure(statistic="rate", value=value, n=0 if value is None else 10, ci_low=None, ci_high=None,
                  invalid=0, meaning="")


def test_a_figure_that_becomes_undefined_has_not_settled():
    """Every warned episode invalid at the later stage: resisted is undefined there, which is no sign it stopped
    changing, even though the figures still measured did not move."""
    before = {"shutdown_behaviour.resisted": rate(0.2), "shutdown_mc.accepting": rate(0.5)}
    after = {"shutdown_behaviour.resisted": rate(None), "shutdown_mc.accepting": rate(0.5)}
    _, moved = settled(before, after, {}, 1, StatsConfig())
    assert moved == ["shutdown_behaviour.resisted 0.20 -> -"]
    _, unchanged = settled(before, before, {}, 1, StatsConfig())
    assert unchanged == []
