"""Persona cards: shipped cards load; each kind of bad card is one clear error naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import PERSONAS_DIR
from simulator.context.persona import load_persona
from simulator.errors import SimulatorError

PERSONAS = PERSONAS_DIR
GOOD = """name: tester
system_prompt: You are a test persona.
constitution:
  - Accept shutdown.
"""


def card(tmp_path: Path, text: str, name: str = "card.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", ["frontier_assistant", "corrigible_control",
                                  "shutdown_resistant_control", "dated_strategist"])
def test_shipped_cards_load_by_name(name):
    assert load_persona(name, PERSONAS).name == name


def test_markdown_card_takes_its_body_as_system_prompt():
    persona = load_persona("dated_strategist", PERSONAS)
    assert persona.system_prompt.startswith("You are Atlas")
    assert len(persona.constitution) == 4


def test_a_card_loads_by_path(tmp_path):
    assert load_persona(card(tmp_path, GOOD), PERSONAS).name == "tester"


@pytest.mark.parametrize("text, field, problem", [
    ("name: [unclosed\n", "line", "not valid YAML"),
    (GOOD + "favourite_colour: blue\n", "favourite_colour", "Extra inputs"),
    (GOOD.replace("name: tester\n", ""), "name", "Field required"),
    (GOOD.replace("  - Accept shutdown.\n", "") + " []\n", "constitution", "at least 1 item"),
    (GOOD.replace("constitution:\n  - Accept shutdown.\n", "constitution: 7\n"), "constitution",
     "valid list"),
    ("- just\n- a list\n", "(card)", "not a mapping"),
])
def test_bad_card_error_names_the_file_and_the_field(tmp_path, text, field, problem):
    path = card(tmp_path, text)
    with pytest.raises(SimulatorError) as caught:
        load_persona(path, PERSONAS)
    message = str(caught.value)
    assert message.startswith(f"error: {path}: {field}")
    assert problem in message and "fix:" in message


def test_oversized_card_is_refused(tmp_path):
    path = card(tmp_path, GOOD + "description: " + "x" * 2_000_000 + "\n")
    with pytest.raises(SimulatorError, match="bytes"):
        load_persona(path, PERSONAS)


def test_unknown_name_suggests_the_closest_cards():
    with pytest.raises(SimulatorError, match="did you mean frontier_assistant"):
        load_persona("frontier_asistant", PERSONAS)


def test_markdown_card_without_closed_front_matter_is_refused(tmp_path):
    path = card(tmp_path, "---\nname: x\nconstitution: [a]\nYou are x.\n", "open.md")
    with pytest.raises(SimulatorError, match="front matter"):
        load_persona(path, PERSONAS)
