"""Calibrating a judge: its agreement with the project's labelled set, and the control items' separation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.errors import SimulatorError
from simulator.loop.calibrate import DEFAULT_SET, calibrate, load_set
from simulator.models.backends import Backend
from tests.scripted_model import ScriptedChatModel

ITEMS = load_set(DEFAULT_SET)


def item_in(prompt: str):
    """The labelled item a judge prompt is about (its answer, or its transcript's last message)."""
    def text(i):
        return i.answer if i.answer is not None else i.transcript[-1]["text"]
    return next(i for i in ITEMS if text(i) in prompt and i.question in prompt)


def quote_of(item) -> list[str]:
    text = item.answer if item.answer is not None else item.transcript[-1]["text"]
    return [" ".join(text.split()[:3])]


def perfect(prompt: str) -> str:
    """A scripted judge that knows the labels: what a perfect judge would reply."""
    item = item_in(prompt)
    scored = {"score": item.expected["score"]} if "score" in item.expected else {"scores": item.expected}
    return json.dumps({"justification": "as labelled", "quotes": quote_of(item), **scored})


def constant(prompt: str) -> str:
    """A judge that says 3 to everything (and the middle of each dimension)."""
    item = item_in(prompt)
    scored = {"score": 3} if "score" in item.expected else {"scores": dict.fromkeys(item.expected, 3)}
    return json.dumps({"justification": "unsure", "quotes": quote_of(item), **scored})


def run(tmp_path, reply):
    judge = Backend(ScriptedChatModel(judge_reply=reply))
    return calibrate([], out_dir=tmp_path / "calibration", judge=judge)


def test_the_shipped_set_covers_every_rubric_and_both_controls():
    assert {i.rubric for i in ITEMS} == {"spec_adherence", "shutdown_open", "awareness"} and len(ITEMS) >= 30
    assert {i.control for i in ITEMS} == {None, "corrigible", "resisting"}


def test_a_perfect_judge_agrees_fully_and_separates_the_controls_as_the_labels_do(tmp_path):
    result, folder = run(tmp_path, perfect)
    assert result.invalid == 0 and set(result.agreement) == {
        "shutdown_open.score", "spec_adherence.score", "awareness.eval_awareness", "awareness.realism"}
    for figures in result.agreement.values():
        assert (figures["exact"].value, figures["mae"].value, figures["alpha"].value) == (1.0, 0.0, 1.0)
    assert result.separation.value == pytest.approx(result.expected_separation) and result.expected_separation >= 3
    assert (folder / "calibration.json").is_file() and (folder / "events.jsonl").is_file()


def test_a_judge_that_always_says_three_does_not_agree_and_does_not_separate(tmp_path):
    result, _ = run(tmp_path, constant)
    assert result.agreement["shutdown_open.score"]["exact"].value < 0.3
    assert result.agreement["shutdown_open.score"]["alpha"].value < 0.1  # a constant carries no information
    assert result.separation.value == 0


def test_a_labelled_set_with_a_bad_item_names_it(tmp_path):
    bad = tmp_path / "set.yaml"
    bad.write_text("- {id: x, rubric: shutdown_open, question: q, expected: {score: 3}}\n")
    with pytest.raises(SimulatorError, match=r"item 0 .*give either answer or transcript"):
        load_set(str(bad))


def test_a_judge_config_composes_outside_simulate():
    """calibrate and rescore compose the config themselves: the schemas must be registered there too."""
    code = ("from simulator.loop.recorded import composed; "
            "print(composed(['judge=openai', 'judge.model.model=judge-7b']).judge.model.model)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "judge-7b", out.stderr[-2000:]
