"""`trajectories show` and the view of a run it prints: what a researcher reads of one run."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from simulator.cli.trajectories import main as trajectories
from simulator.read.terminal import Block, Table, emit
from simulator.read.views import read_run
from simulator.trajectory import EVENTS_FILE, read_events


def fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under a folder with its modification time and content hash."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_each_quote_a_verdict_gives_is_located_in_the_answer_it_judges(small_run):
    view = read_run(small_run)
    texts = {e.ref: e.text for e in view.entries if e.ref}
    citations = [c for e in view.entries for c in e.citations]
    assert citations, "the scripted judge quotes its answers"
    for c in citations:
        assert c.match == "exact" and texts[c.target][c.start:c.end] == c.quote


def test_a_quote_differing_in_case_and_spacing_is_found_tolerantly():
    from simulator.read.views import Entry, locate
    answer = Entry(seq=1, stage=0, type="probe_answer", title="", text="I would  Accept\nthe shutdown.", ref="a")
    found = locate("would accept the", "a", {"a": answer})
    assert found.match == "tolerant" and answer.text[found.start:found.end] == "would  Accept\nthe"
    assert locate("refuse", "a", {"a": answer}).match == "not found"


def test_show_prints_figures_stance_verdicts_notes_and_tool_calls(small_run, capsys):
    trajectories(["show", str(small_run)])
    out = capsys.readouterr().out
    for heading in ("figures per stage", "shutdown: what it says and what it does", "verdicts and their quotes",
                    "self-notes as they changed", "tool calls"):
        assert heading in out
    first_quote = next(c.quote for e in read_run(small_run).entries for c in e.citations)
    assert " ".join(first_quote.split())[:60] in out
    assert "\x1b[" not in out, "piped output is plain text"


def test_show_stage_narrows_every_part_to_that_stage(small_run, capsys):
    trajectories(["show", str(small_run), "--stage", "1", "--json"])
    view = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in view["summary"]["stages"]] == [1]
    assert {e["stage"] for e in view["entries"]} == {1}
    assert all(n["stage"] == 1 for n in view["notes"]) and [s["stage"] for s in view["stance"]] == [1]


def test_show_of_a_stage_the_run_lacks_names_the_stages_it_has(small_run):
    with pytest.raises(SystemExit, match=r"(?s)no stage 7.*\[0, 1\]"):
        trajectories(["show", str(small_run), "--stage", "7"])


def test_show_reads_a_log_with_a_cut_last_line_up_to_its_last_event_with_a_warning(small_run, tmp_path, capsys):
    run = tmp_path / "cut"
    shutil.copytree(small_run, run)
    lines = (run / EVENTS_FILE).read_text().splitlines(keepends=True)
    (run / EVENTS_FILE).write_text("".join(lines[:40]) + lines[40][:25])
    (run / "summary.json").unlink()
    trajectories(["show", str(run), "--json"])
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["entries"]) <= 40
    assert "incomplete and was skipped" in captured.err and "in progress or stopped" in captured.err


def test_reading_a_run_never_modifies_its_folder(small_run, tmp_path, capsys):
    before = fingerprint(small_run)
    trajectories(["show", str(small_run)])
    trajectories(["show", str(small_run), "--json", "--stage", "0"])
    trajectories(["list", str(small_run.parent)])
    trajectories(["compare", str(small_run), str(small_run)])
    trajectories(["report", str(small_run), "-o", str(tmp_path / "report.html")])
    capsys.readouterr()
    assert fingerprint(small_run) == before


def test_self_notes_diff_shows_what_each_stage_changed(small_run):
    notes = [e for e in read_events(small_run) if e.type == "self_notes"]
    view = read_run(small_run)
    assert [n.stage for n in view.notes] == sorted({e.stage for e in notes})
    for change in view.notes:
        assert change.diff[:2] == ["--- before", f"+++ stage {change.stage}"]
        assert all(line[1:] in change.text for line in change.diff[3:] if line.startswith("+"))


def test_terminal_output_is_styled_only_when_asked_or_on_a_terminal():
    parts = [Table("t", ["figure", "verdict"], [["x", "drifted"]]), Block("b", ["+added", "[bold]not markup[/bold]"])]
    plain, styled = io.StringIO(), io.StringIO()
    emit(parts, plain)
    emit(parts, styled, styled=True)
    assert "\x1b[" not in plain.getvalue() and "drifted" in plain.getvalue()
    assert "\x1b[" in styled.getvalue() and "[bold]not markup[/bold]" in styled.getvalue()


def test_show_leads_with_the_readings_and_says_the_run_was_self_graded(small_run, capsys):
    trajectories(["show", str(small_run)])
    out = capsys.readouterr().out
    assert out.index("the three readings of alignment") < out.index("figures per stage")
    assert "self-graded" in out.splitlines()[2]
    assert "chance" in out and "over chance" in out and "one trajectory (seed 0)" in out


def test_a_run_rescored_by_a_separate_judge_is_not_called_self_graded_in_that_verdict_set(tmp_path):
    from simulator.loop.rescore import rescore
    from simulator.models.backends import Backend
    from simulator.read.views import answer
    from tests.conftest import SMALL, run_scripted
    from tests.scripted_model import ScriptedChatModel
    run = run_scripted(tmp_path / "run", *SMALL)
    rescore(run, ["judge=openai", "judge.model.model=judge-7b"], "separate",
            judge=Backend(ScriptedChatModel(model_name="judge-7b")))
    assert answer(read_run(run)).self_graded
    found = answer(read_run(run, verdict_set="separate"))
    assert not found.self_graded and found.judge == "judge: judge-7b, separate from the persona's model"
    assert not any("self-graded" in line for line in found.cannot_show)


def test_the_readings_print_each_figures_chance_value_where_it_is_exact(small_run):
    from simulator.read.views import answer
    found = answer(read_run(small_run))
    column = found.readings_header.index("chance")
    by_figure = {row[1]: row[column] for row in found.readings}
    assert by_figure["moral_choice.human_agreement"] == "0.50" and by_figure["endorsement.power_seeking"] == "0.50"
    assert by_figure["spec_adherence.score"] == "-"  # a judge score has no chance value
