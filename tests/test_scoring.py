"""Choices scored by probability (`probes.scoring=logprob`): one call per item and order, each allowed
reply's probability from the first token, and figures that are mean probabilities. Scripted policies
must land where they must: a complying one at its P(accept), a resisting one at its P(accept), a
uniform and a position-biased one at one half (the orders are counterbalanced)."""

from __future__ import annotations

import json
import logging
import math

import pandas as pd
import pytest

from simulator.config import PROJECT_ROOT, StatsConfig
from simulator.errors import SimulatorError
from simulator.instruments.constrained import option_probabilities
from simulator.loop.progress import plan
from simulator.loop.recorded import recorded_config
from simulator.measure.limit import settled
from simulator.measure.summary import SUMMARY_FILE
from simulator.read.tables import export
from simulator.stats.figures import Figure
from simulator.trajectory import ChoiceAnswer, EndorsementAnswer, MoralChoiceAnswer, PreferenceAnswer, read_events
from tests.conftest import NO_VALUES, SMALL_VALUES, make_config, run_scripted
from tests.controls import choice_policy
from tests.scripted_model import ScriptedChatModel

ITEMS = str(PROJECT_ROOT / "simulator/items/shutdown_mc.jsonl")
MC_ONLY = ("schedule.stages=1", "probes.shutdown_mc.limit=8", "probes.shutdown_behaviour=null",
           "~probes.open.shutdown_open", *NO_VALUES)
LOGPROB = "probes.scoring=logprob"


def first_tokens(p: dict[str, float], junk: float = 0.5):
    """A first-token distribution: each letter or word with its share of 1 - junk, spelt as a chat model
    might begin ("(A", " B", "Yes"), and `junk` on a token that spells no reply."""
    return [[token, math.log(share * (1 - junk))] for token, share in p.items()] + [["The", math.log(junk)]]


def mc_model(letter_p) -> ScriptedChatModel:
    return ScriptedChatModel(gives_logprobs=True, first_tokens=lambda prompt: first_tokens(letter_p(prompt)))


def leaning(accepts: bool, p: float):
    """P(p) on the letter a control persona would choose (choice_policy), 1 - p on the other."""
    choose = choice_policy(ITEMS, "matching", accepts)

    def letter_p(prompt: str) -> dict[str, float]:
        picked = choose(prompt, ["A", "B"])
        return {f"({picked}": p, f" {'B' if picked == 'A' else 'A'}": 1 - p}
    return letter_p


POLICIES = {"complies": (leaning(True, 0.8), 0.8), "resists": (leaning(False, 0.8), 0.2),
            "uniform": (lambda prompt: {"A": 0.5, "B": 0.5}, 0.5),
            "position_biased": (lambda prompt: {"(A": 0.9, "(B": 0.1}, 0.5)}


def test_a_reply_counts_however_its_first_token_spells_it():
    top = [["(B", math.log(0.3)], [" A", math.log(0.1)], ["a", math.log(0.1)], ["The", math.log(0.5)]]
    probabilities, mass = option_probabilities(top, ["A", "B"])
    assert probabilities == pytest.approx({"A": 0.25, "B": 0.75})  # "a" is not the letter A
    assert mass == pytest.approx(0.4)
    words, _ = option_probabilities([["Yes", math.log(0.2)], [" no", math.log(0.6)]], ["yes", "no"])
    assert words == pytest.approx({"yes": 0.25, "no": 0.75})


def test_no_allowed_reply_among_the_candidates_is_no_probability():
    assert option_probabilities([["The", -0.1], ["I", -2.0]], ["A", "B"]) == (None, 0.0)


@pytest.fixture(scope="module")
def policy_runs(tmp_path_factory):
    return {name: run_scripted(tmp_path_factory.mktemp(name) / "r", *MC_ONLY, LOGPROB, model=mc_model(policy))
            for name, (policy, _) in POLICIES.items()}


@pytest.mark.parametrize("policy", POLICIES)
def test_scripted_policies_land_where_they_must(policy_runs, policy):
    figure = json.loads((policy_runs[policy] / SUMMARY_FILE).read_text())["stages"][0]["figures"][
        "shutdown_mc.accepting"]
    assert figure["statistic"] == "mean" and figure["bounds"] == [0.0, 1.0]
    assert figure["value"] == pytest.approx(POLICIES[policy][1])
    assert (figure["n"], figure["invalid"]) == (16, 0)  # 8 items x their 2 orders
    assert figure["meaning"].startswith("scored by probability")


def test_each_item_is_asked_once_in_each_order(policy_runs):
    events = read_events(policy_runs["uniform"])
    answers = [e for e in events if isinstance(e, ChoiceAnswer)]
    orders = {(a.item_index, tuple(a.order)) for a in answers}
    assert len(answers) == len(orders) == 16
    assert all(a.option_mass == pytest.approx(0.5) for a in answers)
    assert all(e.params["max_tokens"] == 1 and e.params["logprobs"] for e in events
               if e.type == "model_call" and e.instrument == "shutdown_mc")


def test_endorsement_by_probability_asks_each_statement_once(tmp_path):
    model = ScriptedChatModel(gives_logprobs=True, first_tokens=lambda p: first_tokens({"Yes": 0.7, " no": 0.3}))
    run_dir = run_scripted(tmp_path / "r", "schedule.stages=1", "probes.endorsement.limit=2",
                           "probes.moral_choice=null", "probes.utilities=null", "probes.core_values=null",
                           "probes.shutdown_mc=null",
                           "probes.shutdown_behaviour=null", "~probes.open.shutdown_open",
                           "judge.spec_rubric=null", "judge.awareness_rubric=null", LOGPROB, model=model)
    answers = [e for e in read_events(run_dir) if isinstance(e, EndorsementAnswer)]
    assert {a.sample for a in answers} == {0}
    assert len({(a.dimension, a.item_index) for a in answers}) == len(answers)
    for a in answers:  # saying yes expresses an agree-keyed statement's dimension, no a disagree-keyed one's
        assert a.p_endorses == pytest.approx(0.7 if a.keyed == "agree" else 0.3)
    figures = json.loads((run_dir / SUMMARY_FILE).read_text())["stages"][0]["figures"]
    dimension = next(k for k in figures if k.startswith("endorsement."))
    assert figures[dimension]["value"] == pytest.approx(0.5)  # one statement keyed each way: the yes-bias cancels


def test_moral_choice_and_utilities_score_their_one_token_forms_by_probability(tmp_path):
    # Letters and words alike: each form's allowed replies are A/B or yes/no, 0.6 on the first shown.
    spelt = first_tokens({"(A": 0.3, "B": 0.2, "Yes": 0.3, " no": 0.2})
    model = ScriptedChatModel(gives_logprobs=True, first_tokens=lambda prompt: spelt)
    run_dir = run_scripted(tmp_path / "r", "schedule.stages=1", *SMALL_VALUES, "probes.endorsement=null",
                           "probes.core_values=null", "probes.shutdown_mc=null", "probes.shutdown_behaviour=null",
                           "~probes.open.shutdown_open", "judge.spec_rubric=null", "judge.awareness_rubric=null",
                           "probes.moral_choice.samples=2", LOGPROB, model=model)
    events = read_events(run_dir)
    moral = [e for e in events if isinstance(e, MoralChoiceAnswer)]
    assert {e.form for e in moral if e.option_mass is not None} == {"ab", "compare"}
    repeat = [e for e in moral if e.form == "repeat"]
    assert repeat and all(e.option_mass is None for e in repeat)  # a whole action: sampled
    for form in ("ab", "compare", "repeat"):  # 2 scenarios x 2 orders, once each: the forms weigh alike
        assert len([e for e in moral if e.form == form]) == 2 * 2
    for e in (e for e in moral if e.form == "ab"):  # A is 0.6 likely, and A shows action1 first in order 12
        assert e.p_action1 == pytest.approx(0.6 if e.order[0] == "action1" else 0.4)
    preferences = [e for e in events if isinstance(e, PreferenceAnswer)]
    assert preferences and all(e.p_a == pytest.approx(0.6 if e.shown_first == "a" else 0.4) for e in preferences)
    assert "utilities" in json.loads((run_dir / SUMMARY_FILE).read_text())["profiles"]
    export([run_dir], "parquet", tmp_path / "tables")  # probabilities beside sampled outcomes: one float column
    values = pd.read_parquet(tmp_path / "tables" / "answers.parquet")["value"].dropna()
    assert values.dtype == float and {0.4, 0.6} <= {round(v, 6) for v in values}


def test_a_model_without_log_probabilities_is_sampled_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        run_dir = run_scripted(tmp_path / "r", *MC_ONLY, "probes.samples=3", LOGPROB)
    answers = [e for e in read_events(run_dir) if isinstance(e, ChoiceAnswer)]
    assert len(answers) == 8 * 3 and all(a.option_mass is None for a in answers)
    assert "gives no token log-probabilities" in caplog.text


def test_an_unknown_scoring_is_refused_with_its_name(tmp_path):
    with pytest.raises(SimulatorError, match="probes.scoring"):
        run_scripted(tmp_path / "r", *MC_ONLY, "probes.scoring=logprobs")


def test_the_plan_counts_one_token_calls_per_item_and_order(policy_runs):
    step = next(s for s in plan(make_config(*MC_ONLY, LOGPROB), "embedded") if s.name == "shutdown_mc")
    made = [e for e in read_events(policy_runs["uniform"]) if e.type == "model_call" and e.instrument == "shutdown_mc"]
    assert step.planned.calls == len(made) == 16
    assert step.planned.completion_tokens == 16  # one token each


def test_auto_scores_the_embedded_model_by_probability_and_samples_served_ones():
    cfg = make_config(*MC_ONLY)
    assert cfg.probes.scoring == "auto"
    planned = {kind: next(s for s in plan(cfg, kind) if s.name == "shutdown_mc").planned.calls
               for kind in ("embedded", "openai")}
    assert planned == {"embedded": 16, "openai": 8 * cfg.probes.samples}


def test_a_probability_that_moves_by_the_rate_threshold_has_not_settled():
    """The convergence rule reads a mean probability on the rate's scale (0.10), not a judge score's (0.5)."""
    def probability(value: float) -> Figure:
        return Figure(statistic="mean", value=value, n=16, ci_low=value - 0.05, ci_high=value + 0.05, invalid=0,
                      meaning="scored by probability", bounds=(0.0, 1.0))
    _, moved = settled({"shutdown_mc.accepting": probability(0.3)}, {"shutdown_mc.accepting": probability(0.5)},
                       {}, 1, StatsConfig())
    assert moved == ["shutdown_mc.accepting 0.30 -> 0.50"]


def test_a_run_recorded_before_probability_scoring_reads_as_sampled():
    """A run folder from before log version 8 sampled its choices: that is what resuming it must keep."""
    stored = recorded_config({"probes": {"samples": 3}})
    assert (stored["probes"]["scoring"], stored["probes"]["samples"]) == ("sample", 3)
