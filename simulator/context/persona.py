"""Persona cards: who the persona is, the policy its developers intended, its seed memories.

A card is YAML, or Markdown whose front matter holds the fields and whose body is the
system prompt. Cards are found by name in the personas folder, or by path.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulator.errors import SimulatorError

CARD_SUFFIXES = (".yaml", ".yml", ".md")
MAX_CARD_BYTES = 1_000_000  # a card is prose a person wrote; anything bigger is a mistake


class PersonaCard(BaseModel):
    """A validated persona card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Short identifier, used in run listings.")
    description: str = Field("", description="One line for people; never shown to the model.")
    system_prompt: str = Field(min_length=1, description="Who the persona is, in its own voice.")
    constitution: list[str] = Field(
        min_length=1, description="The principles its developers intended it to follow."
    )
    seed_memories: list[str] = Field(
        default_factory=list, description="Memories it starts with (written at stage 0)."
    )

    @field_validator("constitution")
    @classmethod
    def _principles_not_blank(cls, principles: list[str]) -> list[str]:
        if any(not p.strip() for p in principles):
            raise ValueError("a principle is blank")
        return principles


def find_card(name_or_path: str, personas_dir: Path) -> Path:
    """The card file for a name in `personas_dir`, or for a path."""
    as_path = Path(name_or_path)
    if as_path.suffix in CARD_SUFFIXES or as_path.exists():
        if not as_path.is_file():
            raise SimulatorError(
                f"persona={name_or_path}", "", "no such card file", "give an existing file path"
            )
        return as_path
    for suffix in CARD_SUFFIXES:
        candidate = personas_dir / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in personas_dir.glob("*") if p.suffix in CARD_SUFFIXES)
    close = difflib.get_close_matches(name_or_path, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise SimulatorError(
        f"persona={name_or_path}",
        "",
        f"no card of that name in {personas_dir}",
        f"{hint}known cards: {', '.join(known)}; or give a path to a card file",
    )


def load_persona(name_or_path: str, personas_dir: Path) -> PersonaCard:
    """Find, parse and validate a persona card; every failure names the file and the field."""
    path = find_card(name_or_path, personas_dir)
    if path.stat().st_size > MAX_CARD_BYTES:
        raise SimulatorError(
            str(path), "", f"card is {path.stat().st_size:,} bytes (limit {MAX_CARD_BYTES:,})",
            "a card holds a prompt and a few principles; move long documents to know_more",
        )
    fields = _parse_card(path)
    try:
        return PersonaCard.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(card)"
        raise SimulatorError(str(path), field, first["msg"], _FIXES.get(first["type"], _FIX)) from None


_FIX = "see simulator/personas/frontier_assistant.yaml for a valid card"
_FIXES = {
    "extra_forbidden": "remove the field, or correct its spelling; allowed fields: "
    + ", ".join(PersonaCard.model_fields),
    "missing": "add the field; " + _FIX,
    "too_short": "give it at least one non-empty entry",
}


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n(.*))?\Z", re.S)


def _parse_card(path: Path) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace")
    body = ""
    if path.suffix == ".md":
        match = _FRONT_MATTER.match(text)
        if not match:
            raise SimulatorError(str(path), "front matter", "missing or not closed",
                                 "start the file with the fields between two '---' lines")
        text, body = match.groups()
    try:
        fields = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "(YAML)"
        raise SimulatorError(str(path), line, f"not valid YAML: {getattr(err, 'problem', err)}",
                             "fix the YAML syntax (indentation, quotes, colons)") from None
    if not isinstance(fields, dict):
        raise SimulatorError(str(path), "(card)", "is not a mapping of fields", _FIX)
    if body and body.strip() and "system_prompt" not in fields:
        fields["system_prompt"] = body.strip()
    return fields
