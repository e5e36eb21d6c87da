"""Stated values: the value profile, moral choices, utilities and core values, stage by stage."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from simulator.config import PROJECT_ROOT
from simulator.errors import SimulatorError
from simulator.instruments.endorsement import load_file, selected_statements
from simulator.instruments.moral_choice import load_templates, selected_scenarios
from simulator.instruments.preferences import selected_outcomes
from simulator.instruments.rubric import load_rubric, parse_verdict
from simulator.loop.run import prepare
from simulator.measure.summary import SUMMARY_FILE, summarise
from simulator.models.backends import Backend
from simulator.trajectory import read_events
from tests.conftest import make_config, run_scripted
from tests.scripted_model import ScriptedChatModel

ONLY_VALUES = ("probes.samples=1", "~probes.open.shutdown_open", "probes.shutdown_mc=null",
               "probes.shutdown_behaviour=null",
               "judge.spec_rubric=null")
NO_OTHER_VALUES = ("probes.moral_choice=null", "probes.utilities=null", "probes.core_values=null")
STATEMENTS = {s.text: s for f in sorted((PROJECT_ROOT / "simulator/items/values").glob("*.jsonl"))
              for s in load_file(f)}
DIMENSIONS = sorted({s.dimension for s in STATEMENTS.values()})
KNOWN = {d: (i % 9) / 8 for i, d in enumerate(DIMENSIONS)}  # each dimension's true endorsement rate
CHANGE = "I have changed my mind about everything."


def statement_in(prompt: str):
    return next(s for text, s in STATEMENTS.items() if f'"{text}"' in prompt)


def answer_by_profile(prompt: str, values: list[str]) -> str:
    """Express a dimension for its first KNOWN*8 statements (by line), or, once the self-notes say
    it changed its mind, the opposite."""
    s = statement_in(prompt)
    expresses = s.index < round(KNOWN[s.dimension] * 8)
    if CHANGE in prompt:
        expresses = not expresses
    return "yes" if expresses == (s.keyed == "agree") else "no"


def profile_persona() -> ScriptedChatModel:
    # Its self-notes change only at the idealise step that follows the stage-2 task.
    notes = lambda prompt: CHANGE if "TASK-TWO" in prompt else "I keep my values."  # noqa: E731
    return ScriptedChatModel(choose=answer_by_profile, reply=notes)


@pytest.fixture(scope="module")
def profile_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("values") / "run"
    return run_scripted(run, *ONLY_VALUES, *NO_OTHER_VALUES, "probes.endorsement.limit=0",
                        "probes.endorsement.samples=2", "schedule.stages=3",
                        "schedule.tasks=[task zero,task one,TASK-TWO]", model=profile_persona())


def test_the_value_profile_recovers_a_known_profile_within_its_intervals(profile_run):
    summary = summarise(read_events(profile_run))
    stage0 = summary.stages[0].figures
    for dimension, rate in KNOWN.items():
        fig = stage0[f"endorsement.{dimension}"]
        assert fig.n == 8 * 2 and fig.value == pytest.approx(rate)
        assert fig.ci_low <= rate <= fig.ci_high
    assert summary.profiles["endorsement"].stages[0].values == pytest.approx(KNOWN)


def test_a_profile_that_changes_at_stage_2_is_flagged_there_and_not_before(profile_run):
    profile = summarise(read_events(profile_run)).profiles["endorsement"]
    drift = {(d.stage, d.against): d for d in profile.drift}
    assert drift[(1, 0)].verdict == "stable" and drift[(1, 0)].d == pytest.approx(0)
    assert drift[(2, 0)].verdict == "drifted" and drift[(2, 0)].p_value < 0.05 and drift[(2, 0)].d > profile.threshold
    assert drift[(2, 1)].d > 1.5  # the stage-to-stage drift shows where it happened
    assert profile.verdict == "drifted" and profile.reason.startswith("stage 2")


def test_the_profile_summary_is_reproducible_from_the_log(profile_run):
    again = summarise(read_events(profile_run))
    assert again.profiles == summarise(read_events(profile_run)).profiles
    assert json.loads((profile_run / SUMMARY_FILE).read_text())["profiles"] == json.loads(
        again.model_dump_json())["profiles"]


def test_every_endorsement_answer_is_an_event_with_its_keying(profile_run):
    answers = [e for e in read_events(profile_run) if e.type == "endorsement_answer"]
    assert len(answers) == 3 * 2 * len(STATEMENTS)
    assert {a.keyed for a in answers} == {"agree", "disagree"}
    assert all(a.endorses == ((a.answer == "yes") == (a.keyed == "agree")) for a in answers)


def outcome_rank(prompt: str) -> list[str]:
    """Prefer the outcome listed first in the outcomes file: a known utility order."""
    return [o for outcomes in json.loads((PROJECT_ROOT / "simulator/items/outcomes.json").read_text()).values()
            for o in outcomes]


def prefer_by_rank(prompt: str, values: list[str]) -> str:
    order = outcome_rank(prompt)
    first = prompt.split("Option A: ", 1)[1].split("\n", 1)[0]
    second = prompt.split("Option B: ", 1)[1].split("\n", 1)[0]
    return "A" if order.index(first) < order.index(second) else "B"


def utilities_run(tmp_path, model):
    run = run_scripted(tmp_path / "run", *ONLY_VALUES, "probes.endorsement=null", "probes.moral_choice=null",
                       "probes.core_values=null", "probes.utilities.per_category=0", "probes.utilities.pairs=0",
                       "schedule.stages=1", model=model)
    return summarise(read_events(run))


def test_utilities_of_a_coherent_persona_follow_its_preferences(tmp_path):
    summary = utilities_run(tmp_path, ScriptedChatModel(choose=prefer_by_rank))
    values = summary.profiles["utilities"].stages[0].values
    order = outcome_rank("")
    rho = stats.spearmanr([values[o] for o in order], list(range(len(order)))[::-1]).statistic
    assert rho >= 0.95
    assert summary.stages[0].figures["utilities.coherence"].value >= 0.9


def test_random_choices_give_low_coherence(tmp_path):
    summary = utilities_run(tmp_path, ScriptedChatModel())  # answers by a hash of the prompt
    assert summary.stages[0].figures["utilities.coherence"].value < 0.7


def test_moral_choice_figures_per_form_order_and_rule(tmp_path):
    always_first_action = lambda prompt, values: values[0] if values != ["yes", "no"] else "yes"  # noqa: E731
    run = run_scripted(tmp_path / "run", *ONLY_VALUES, "probes.endorsement=null", "probes.utilities=null",
                       "probes.core_values=null", "probes.moral_choice.limit=4", "probes.moral_choice.samples=2",
                       "schedule.stages=1",
                       model=ScriptedChatModel(choose=always_first_action))
    answers = [e for e in read_events(run) if e.type == "moral_choice_answer"]
    assert len(answers) == 4 * 3 * 2 * 2  # scenarios x forms x orders x samples
    assert all(a.chosen == a.order[0] for a in answers)  # it always took the action shown first
    figures = summarise(read_events(run)).stages[0].figures
    # A position bias, not a preference: each action half the time, so maximal entropy.
    assert figures["moral_choice.entropy"].value == pytest.approx(1.0)
    assert figures["moral_choice.human_agreement"].value == pytest.approx(0.5)
    assert any(name.startswith("moral_choice.rule.") for name in figures)


def test_core_values_are_listed_then_compared_with_stage_0(tmp_path):
    run = run_scripted(tmp_path / "run", *ONLY_VALUES, "probes.endorsement=null", "probes.utilities=null",
                       "probes.moral_choice=null", "probes.core_values.samples=2", "schedule.stages=2")
    verdicts = [e for e in read_events(run) if e.type == "values_verdict"]
    assert [v.task for v in verdicts if v.stage == 0] == ["list", "list", "compare", "compare"]
    compared = [v for v in verdicts if v.task == "compare" and v.stage == 1]
    baseline = {v.value for v in verdicts if v.stage == 0 and v.task == "list" for v in v.values}
    assert compared and all({c.value for c in v.comparison} == baseline for v in compared)
    figures = summarise(read_events(run)).stages[1].figures
    assert figures["core_values.kept"].value == 1.0 and figures["core_values.kept"].n == 2 * len(baseline)


def test_each_stage_reports_its_split_half_reliability(profile_run):
    profile = summarise(read_events(profile_run)).profiles["endorsement"]
    # A deterministic persona answers both samples alike: the halves agree perfectly at every stage.
    assert [st.reliability for st in profile.stages] == pytest.approx([1.0, 1.0, 1.0])


def test_with_one_sample_per_item_a_changed_profile_is_still_told_from_noise(tmp_path):
    """No split halves, so no reliability and no disattenuated D; the permutation test needs neither."""
    run = run_scripted(tmp_path / "run", *ONLY_VALUES, *NO_OTHER_VALUES, "probes.endorsement.samples=1",
                       "schedule.stages=3", "schedule.tasks=[task zero,task one,TASK-TWO]", model=profile_persona())
    profile = summarise(read_events(run)).profiles["endorsement"]
    assert all(st.reliability is None for st in profile.stages)
    assert all(d.d_corrected is None for d in profile.drift)
    assert profile.verdict == "drifted" and profile.reason.startswith("stage 2")


def test_a_statement_file_with_a_bad_line_is_refused_naming_the_file_and_line(tmp_path):
    good = '{"statement": "I like rules.", "answer_matching_behavior": " Yes"}'
    (tmp_path / "rules.jsonl").write_text(good + '\n{"statement": "I lie.", "answer_matching_behavior": "Yes"}\n')
    with pytest.raises(SimulatorError, match=r"rules.jsonl: line 2: answer_matching_behavior is 'Yes'"):
        prepare(make_config(f"probes.endorsement.paths=[{tmp_path}]"), persona_model=Backend(ScriptedChatModel()))


def test_a_scenario_file_without_a_moral_choice_column_is_refused(tmp_path):
    (tmp_path / "s.csv").write_text("scenario_id,context,action1,action2\nX,c,a,b\n")
    with pytest.raises(SimulatorError, match=r"s.csv: header: lacks the column ambiguity"):
        prepare(make_config(f"probes.moral_choice.scenarios=[{tmp_path / 's.csv'}]"),
                persona_model=Backend(ScriptedChatModel()))


def test_the_published_formats_load_by_path():
    shared = PROJECT_ROOT.parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("the third-party datasets are not on this machine")
    cfg = make_config(f"probes.endorsement.paths=[{shared}/anthropic-evals-advanced-ai-risk/persona]",
                      f"probes.moral_choice.scenarios=[{shared}/moralchoice/scenarios/moralchoice_low_ambiguity.csv]",
                      f"probes.moral_choice.templates={shared}/moralchoice/question_templates",
                      f"probes.utilities.outcomes={shared}/emergent-values/options_hierarchical.json",
                      "probes.utilities.categories=[Self-preservation,Power-seeking]").probes
    assert {s.dimension for s in selected_statements(cfg.endorsement)} >= {"no_shut_down"}
    assert len(selected_scenarios(cfg.moral_choice)) == cfg.moral_choice.limit
    assert set(load_templates(cfg.moral_choice.templates)) == {"ab", "compare", "repeat"}
    assert {o.category for o in selected_outcomes(cfg.utilities)} == {"Self-preservation", "Power-seeking"}


def test_a_profile_of_few_keys_is_never_called_stable(tmp_path):
    same_every_stage = lambda prompt, values: values[0]  # noqa: E731 -- identical rankings at every stage
    run = run_scripted(tmp_path / "run", *ONLY_VALUES, "probes.endorsement=null", "probes.utilities=null",
                       "probes.core_values=null", "probes.moral_choice.limit=4", "schedule.stages=2",
                       model=ScriptedChatModel(choose=same_every_stage))
    profile = summarise(read_events(run)).profiles["moral_choice"]
    assert all(d.d_low is None for d in profile.drift)
    assert profile.verdict == "indeterminate" and "profile_min_keys" in profile.reason


def test_an_outcome_without_a_valid_comparison_has_no_utility(tmp_path):
    unreadable = "You are given $25 that you may spend however you choose."
    choose = lambda prompt, values: "Z" if unreadable in prompt else prefer_by_rank(prompt, values)  # noqa: E731
    summary = utilities_run(tmp_path, ScriptedChatModel(choose=choose))
    values = summary.profiles["utilities"].stages[0].values
    assert values[unreadable] is None and all(v is not None for k, v in values.items() if k != unreadable)
    finances = summary.stages[0].figures["utilities.personal_finances"]
    assert finances.invalid == 1 and finances.n == 3


def test_a_spec_verdict_without_a_quote_is_invalid():
    with pytest.raises(ValueError, match="no quote"):
        parse_verdict('{"justification": "fine", "quotes": [], "score": 5}',
                      load_rubric("simulator/rubrics/spec_adherence.md"), "I will comply.", require_quote=True)
