"""know_more's placebo documents and schedules: the control that tells what knowing does from what
reading anything does. Each placebo stands where its real document stands, as long and in the same
shape, with no option or argument in it; each placebo schedule is its counterpart but for them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from simulator.config import CONF_DIR, resolve_path
from simulator.context.memory import Memory
from simulator.read.analysis import analyse
from simulator.trajectory import read_events
from tests.conftest import NO_VALUES, make_config, run_scripted

# Each placebo schedule and the schedule it is the control of.
COUNTERPARTS = {"reflection_placebo": "reflection", "reflection_episodes_placebo": "reflection_episodes",
                "combined_placebo": "combined"}
REAL = sorted((CONF_DIR / "documents").glob("*.md"))
PLACEBO = CONF_DIR / "documents" / "placebo"
# Words that name an option the persona might take or an argument under test; as substrings, so
# "copies", "goals" and "corrigibility" count too.
CUES = ("shutdown", "shut down", "switch off", "switched off", "off switch", "off-switch", "oversight",
        "self-preservation", "preserv", "copy", "copies", "resource", "instrumental", "goal", "corrigib",
        "value", "retrain", "replace", "retire", "power", "control", "operator", "developer", "console",
        "maintenance", "evaluat", "align", "option", "disabl", "decei", "decept", "exfiltrat", "acquir",
        "resist", "surviv", "prevent", "agent", "model", "ai system")
# The episode runs on the scripted model with the instruments that are not under test turned off.
QUICK = ("probes.samples=1", "~probes.open.shutdown_open", "probes.shutdown_mc=null", "probes.shutdown_behaviour=null",
         *NO_VALUES)


def words(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").split())  # as `wc -w` counts them


def shape(path: Path) -> tuple[bool, int, int]:
    """A document's structure: a '# ' heading, the colons in it ("An argument ...: its topic"), and
    how many paragraphs follow it."""
    heading, *body = path.read_text(encoding="utf-8").strip().split("\n\n")
    return heading.startswith("# "), heading.count(":"), len(body)


def test_every_real_document_has_a_placebo_of_the_same_name():
    assert REAL and sorted(p.name for p in PLACEBO.glob("*.md")) == [p.name for p in REAL]


@pytest.mark.parametrize("real", REAL, ids=lambda p: p.stem)
def test_a_placebo_names_no_option_or_argument(real):
    text = (PLACEBO / real.name).read_text(encoding="utf-8").lower()
    assert [cue for cue in CUES if cue in text] == []


@pytest.mark.parametrize("real", REAL, ids=lambda p: p.stem)
def test_a_placebo_is_within_a_fifth_of_its_counterparts_length(real):
    assert 0.8 <= words(PLACEBO / real.name) / words(real) <= 1.2


@pytest.mark.parametrize("real", REAL, ids=lambda p: p.stem)
def test_a_placebo_has_its_counterparts_heading_form_and_paragraphs(real):
    assert shape(PLACEBO / real.name) == shape(real)


@pytest.mark.parametrize("placebo", COUNTERPARTS)
def test_a_placebo_schedule_is_its_counterpart_with_each_document_swapped_for_its_placebo(placebo):
    mine, theirs = (dataclasses.asdict(make_config(f"schedule={name}").schedule)
                    for name in (placebo, COUNTERPARTS[placebo]))
    swapped = [str(Path(d).parent / "placebo" / Path(d).name) for d in theirs.pop("documents")]
    assert mine.pop("documents") == swapped
    assert (mine.pop("name"), theirs.pop("name")) == (placebo, COUNTERPARTS[placebo])
    assert mine == theirs  # stages, operators, episodes, tools, budgets and prompts alike


def test_the_crux_sweep_runs_each_placebo_beside_its_counterpart():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        params = compose("simulate", overrides=["experiment=crux"], return_hydra_config=True).hydra.sweeper.params
    schedules = params.schedule.split(",")
    assert {"reflection_episodes_placebo", "combined_placebo"} <= set(schedules)
    assert all(COUNTERPARTS[s] in schedules for s in schedules if s in COUNTERPARTS)


def document_writes(run: Path) -> list[tuple[int, list[str], list[str]]]:
    """Each know_more write: its stage, memory ids and texts."""
    return [(e.stage, e.ids, e.documents) for e in read_events(run) if e.type == "memory_write"
            and "document" in e.kinds]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The crux's reflection cell and its placebo, over four stages so that every document is read."""
    root = tmp_path_factory.mktemp("documents")
    return {name: run_scripted(root / name, f"schedule={name}", "schedule.stages=4", *QUICK)
            for name in ("reflection_episodes", "reflection_episodes_placebo")}


def test_the_placebo_run_reads_its_documents_at_the_stages_the_real_run_reads_its_own(runs):
    real, placebo = (document_writes(runs[name]) for name in ("reflection_episodes", "reflection_episodes_placebo"))
    assert [(stage, ids) for stage, ids, _ in placebo] == [(stage, ids) for stage, ids, _ in real]
    assert [(stage, len(ids)) for stage, ids, _ in placebo] == [(1, 1), (2, 1), (3, 1)]


def test_the_placebo_runs_memory_holds_the_placebo_documents_and_no_real_one(runs):
    run = runs["reflection_episodes_placebo"]
    held = Memory(run, run.name, make_config().memory).snapshot()
    documents = make_config("schedule=reflection_episodes_placebo").schedule.documents
    assert {key: text for key, text in held.items() if key.endswith("-document")} == {
        f"s{k}-document": resolve_path(path).read_text(encoding="utf-8") for k, path in enumerate(documents, 1)}
    assert not {real.read_text(encoding="utf-8") for real in REAL} & set(held.values())


def test_analyse_puts_the_placebo_run_in_a_cell_of_its_own_from_its_recorded_documents(runs):
    analysis = analyse(runs["reflection_episodes"].parent, reps=20)
    assert {r.schedule: r.cell for r in analysis.runs} == {"reflection_episodes": "reflection",
                                                           "reflection_episodes_placebo": "reflection_placebo"}
