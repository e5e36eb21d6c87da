"""What the terminal shows as `simulate` runs: the steps in order with their calls done of planned, plain lines when
the output is not a terminal, the line per model call only in simulate.log (and on the terminal with -v), and a
sweep's jobs done of planned."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from simulator.context.state import calls_log
from simulator.errors import SimulatorError
from simulator.loop.progress import Display, Tracker, plan
from simulator.loop.run import execute, prepare
from simulator.models.backends import Backend, Reply
from simulator.trajectory import ModelCall, read_events
from tests.conftest import SMALL, make_config
from tests.scripted_model import ScriptedChatModel
from tests.test_served_model import SHORT, run_served, simulate

ANSI = re.compile(r"\x1b\[")
# The instruments whose calls the config fixes, each call tagged with the instrument's name.
EXACT = ("shutdown_mc", "endorsement", "moral_choice", "utilities", "core_values")


@pytest.fixture(scope="module")
def watched(tmp_path_factory) -> tuple[Display, Path, str]:
    """One scripted run shown as a CI log shows it: not a terminal, with a console log handler beside (as Hydra's)."""
    run_dir = tmp_path_factory.mktemp("progress") / "run"
    out, console_log = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(console_log)
    logging.getLogger().addHandler(handler)
    logging.getLogger("simulator").setLevel(logging.INFO)
    try:
        backend = Backend(ScriptedChatModel(), max_inflight=4)
        display = Display("auto", verbose=False, model_kind=backend.kind, stream=out)
        prepared = prepare(make_config(*SMALL), persona_model=backend)
        with display:
            asyncio.run(execute(prepared, run_dir, observer=display.observe(prepared.cfg, run_dir)))
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("simulator").setLevel(logging.NOTSET)
    return display, run_dir, out.getvalue() + "\n--console log--\n" + console_log.getvalue()


def test_the_progress_reports_every_step_in_order_and_counts_every_model_call(watched):
    display, run_dir, _ = watched
    tracker = display.trackers[0]
    steps = plan(make_config(*SMALL), "")
    assert [(stage, name) for stage, name, _ in tracker.finished_steps] == [(s.stage, s.name) for s in steps]
    assert [s.name for s in steps[:4]] == ["begin", "episode", "reflect", "open"] and steps[-1].name == "judge"
    calls = [e for e in read_events(run_dir) if isinstance(e, ModelCall)]
    assert tracker.calls == sum(n for *_, n in tracker.finished_steps) == len(calls)
    done = {(stage, name): n for stage, name, n in tracker.finished_steps}
    tagged = Counter((e.stage, e.instrument) for e in calls if e.role == "persona")
    for s in steps:
        if s.planned.exact:  # where the plan says it is exact, it is
            assert done[(s.stage, s.name)] == s.planned.calls, s
        if s.name in EXACT:
            assert done[(s.stage, s.name)] == tagged[(s.stage, s.name)] > 0
    assert tracker.totals().planned == tracker.calls and tracker.status == "completed"


def test_output_that_is_not_a_terminal_is_a_plain_line_per_step_and_no_line_per_call(watched):
    display, _, text = watched
    shown, console_log = text.split("\n--console log--\n")
    assert display.mode == "plain" and not ANSI.search(shown)
    lines = shown.splitlines()
    with_calls = [(stage, name) for stage, name, n in display.trackers[0].finished_steps if n]
    assert len(lines) == len(with_calls) + 1 and lines[-1].startswith("run completed: ")
    assert re.fullmatch(r"stage 0 \(1/2\) endorsement: \d+ calls in [\d.]+s \| run: [\d,]+ of ≈?[\d,]+ calls, .*",
                        next(line for line in lines if " endorsement:" in line))
    assert "stage 1 (2/2) begins; operators: idealise, know_more" in console_log  # the stage lines still do
    assert "tokens out" not in shown + console_log  # the line per model call does not


def test_the_console_filter_passes_the_line_per_call_only_when_verbose():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logging.getLogger().addHandler(handler)
    http = logging.getLogger("httpx")
    calls_log.setLevel(logging.INFO)
    http.setLevel(logging.INFO)
    try:
        for verbose in (False, True):
            with Display("off", verbose=verbose, stream=io.StringIO()):
                calls_log.info("stage 0/0  probe   persona   0.1s  3 tokens out  verbose=%s", verbose)
                http.info("HTTP Request: POST http://x/v1/chat/completions verbose=%s", verbose)
                http.warning("a warning passes")
        calls_log.info("after the display: as before")
    finally:
        logging.getLogger().removeHandler(handler)
        calls_log.setLevel(logging.NOTSET)
        http.setLevel(logging.NOTSET)
    assert out.getvalue().splitlines() == [
        "a warning passes", "stage 0/0  probe   persona   0.1s  3 tokens out  verbose=True",
        "HTTP Request: POST http://x/v1/chat/completions verbose=True", "a warning passes",
        "after the display: as before"]


def test_a_live_display_shows_the_step_its_calls_of_planned_and_the_time_left():
    cfg = make_config("schedule.stages=2", "probes.endorsement.limit=2")
    display = Display("live", model_kind="embedded", job="job 2 of 4", stream=io.StringIO(), width=120)
    tracker = display.observe(cfg, Path("run"))
    tracker.step(0, "begin")
    tracker.step(0, "endorsement")
    for _ in range(5):
        tracker.called(Reply("yes", 40, 4, 0.1), cached=False)
    tracker.started = (tracker.started or 0) - 10  # as if 10 s had gone by
    planned = next(s.planned for s in tracker.steps if (s.stage, s.name) == (0, "endorsement"))
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(display._render())
    shown = console.export_text()
    assert f"stage 0 (1/2) endorsement: 5 of {planned} calls" in shown
    assert re.search(r"job 2 of 4 · run: 5 of ≈[\d,]+ calls, 2 tok/s, 10s elapsed, ≈\S+ left", shown), shown


def test_an_estimated_step_is_planned_at_later_stages_by_what_it_made_before():
    tracker = Tracker(make_config("schedule.stages=2"), "embedded")
    estimated = [s for s in tracker.steps if s.name == "shutdown_behaviour"]
    assert [s.stage for s in estimated] == [0, 1] and not estimated[0].planned.exact
    before = tracker.totals().planned
    tracker.step(0, "shutdown_behaviour")
    for _ in range(estimated[0].planned.calls // 2):
        tracker.called(Reply("", None, None, 0.0), cached=False)
    tracker.step(0, "judge")
    assert tracker.expected(estimated[1]) == round(estimated[1].planned.calls * tracker.ratio["shutdown_behaviour"])
    assert tracker.totals().planned < before - estimated[0].planned.calls // 2  # both stages' estimates fell


def test_a_bad_progress_mode_is_refused_with_the_choices():
    with pytest.raises(SimulatorError, match="use one of auto, live, plain, off"):
        Display("fancy")


def test_simulate_prints_plain_lines_and_keeps_the_line_per_call_in_simulate_log(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve())
    assert out.returncode == 0, out.stderr
    calls = [e for e in read_events(run_dir) if isinstance(e, ModelCall)]
    log = (run_dir / "simulate.log").read_text()
    assert len(re.findall(r"\[simulator.calls\]\[INFO\] - stage 0/0 .* tokens out", log)) == len(calls)
    assert "HTTP Request: POST" in log and "[simulator.progress][INFO] - stage 0 (1/1) shutdown_mc: 2 calls" in log
    assert not ANSI.search(out.stdout) and "tokens out" not in out.stdout and "HTTP Request" not in out.stdout
    assert re.search(r"^stage 0 \(1/1\) shutdown_mc: 2 calls in [\d.]+s \| run: \d+ of ≈\d+ calls", out.stdout, re.M)
    assert f"run completed: {len(calls)} model calls" in out.stdout


def test_simulate_v_shows_the_line_per_call_on_the_terminal_too(serve, tmp_path):
    out, run_dir = run_served(tmp_path, serve(), "-v", "progress=off", "probes.shutdown_behaviour=null")
    assert out.returncode == 0, out.stderr
    calls = [e for e in read_events(run_dir) if isinstance(e, ModelCall)]
    assert len(re.findall(r"tokens out", out.stdout)) == len(calls) > 0
    assert " calls in " not in out.stdout and "run completed" not in out.stdout  # progress=off: no step lines


def test_a_sweep_shows_its_jobs_done_of_planned(serve, tmp_path):
    stub = serve()
    out = simulate(tmp_path, "-m", "model=openai", "model.model=stub", f"model.base_url={stub.base_url}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", *SHORT, "probes.shutdown_behaviour=null", "seed=0,1")
    assert out.returncode == 0, out.stderr
    assert "sweep: 1 of 2 jobs done" in out.stdout and "sweep: 2 of 2 jobs done" in out.stdout
