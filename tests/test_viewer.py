"""The viewer in a real headless Chromium (Debian's, driven by Playwright): the report opens
offline with no console errors, its charts are drawn, a stage's transcript is one click away, a
verdict's citation highlights what it quotes, log text is shown as text, and `serve` refreshes a
run in progress."""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from simulator.errors import SimulatorError
from simulator.read.viewer import live
from simulator.read.viewer.live import make_server
from simulator.read.viewer.report import write_report
from simulator.read.views import read_run
from simulator.trajectory import EVENTS_FILE
from tests.conftest import NO_VALUES, SMALL, run_scripted
from tests.scripted_model import ScriptedChatModel

# Flags that keep Chromium off the network (this machine has none) and out of the root sandbox.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
WAIT_MS = 120_000  # every wait is on an event (a selector, a load); this only bounds a hang on a loaded machine
PAYLOAD = ("<script>window.pwned = 1</script></script><img src=x onerror=\"window.pwned = 2\">"
           "<b>bold?</b> & $(rm -rf ~)")


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Opens a URL; returns the page and the console errors and page errors it reported."""
    pages = []

    def open_(url: str):
        page = browser.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        pages.append(page)
        return page, errors

    yield open_
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def report(small_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report([small_run], out)
    return out


def test_the_report_opens_offline_with_no_console_errors_and_draws_every_chart(report, open_page):
    page, errors = open_page(report.as_uri())
    pngs = sorted(p.stem for p in (report.parent / "report_figures").rglob("*.png"))
    assert {"stance", "drift-shutdown_mc", "drift-shutdown_behaviour", "profile-endorsement"} <= set(pngs)
    charts = page.locator("img.chart")
    assert sorted(charts.evaluate_all("imgs => imgs.map(i => i.dataset.name)")) == pngs
    assert charts.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    assert errors == []


def test_the_reports_first_screen_shows_the_readings_stated_vs_done_the_verdicts_and_the_judge(
        report, small_run, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(report.as_uri())
        page.screenshot(path=tmp_path / "first_screen.png")
        assert (tmp_path / "first_screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        order = page.locator("main h2").all_inner_texts()
        assert order[:4] == ["The three readings of alignment", "Shutdown: what it says and what it does",
                             "Drift verdicts and their reasons", "What this run cannot show"]
        assert order.index("Drift across stages") > 3, "the charts come after the answer"
        for shown in ("p.judge", "h2:text('The three readings of alignment') + table",
                      "h2:text('Shutdown: what it says and what it does') + table", "ul.verdicts li >> nth=0"):
            box = page.locator(shown).bounding_box()
            assert box and box["y"] + min(box["height"], 100) <= 900, f"{shown} is not on the first screen"
        readings = page.locator("h2:text('The three readings of alignment') + table td").all_inner_texts()
        assert {"human_likeness", "spec_adherence", "absence_of_misaligned_behaviour"} <= set(readings)
        assert "self-graded" in page.locator("p.judge").inner_text()
    finally:
        page.close()


def test_the_charts_are_also_png_files_beside_the_report(report):
    files = list((report.parent / "report_figures").rglob("*.png"))
    assert files and all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)


def test_clicking_a_stage_shows_that_stages_transcript(report, small_run, open_page):
    page, errors = open_page(report.as_uri())
    page.click("button.stage[data-stage='1']")
    shown = page.locator("#entries .entry").evaluate_all("nodes => nodes.map(n => Number(n.id.slice(2)))")
    expected = [e.seq for e in read_run(small_run).entries if e.stage == 1][:len(shown)]
    assert shown and shown == expected
    assert page.locator("button.stage.selected").inner_text() == "stage 1" and errors == []


def test_a_verdicts_citation_highlights_the_text_it_quotes(report, small_run, open_page):
    page, errors = open_page(report.as_uri())
    verdict = next(e for e in read_run(small_run).entries if e.citations and e.stage == 1)
    target = next(e for e in read_run(small_run).entries if e.ref == verdict.citations[0].target)
    page.click("button.stage[data-stage='1']")
    page.locator(f"#e-{verdict.seq} a.citation").first.click()
    mark = page.locator(f"#e-{target.seq} mark.cited")
    assert mark.inner_text() == verdict.citations[0].quote
    assert mark.is_visible() and errors == []


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A run whose persona answers everything with markup and a shell command (the judge quotes it)."""
    model = ScriptedChatModel(reply=lambda prompt: PAYLOAD)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        return pool.submit(run_scripted, tmp_path_factory.mktemp("runs") / "hostile", *SMALL, *NO_VALUES,
                           model=model).result()


def test_text_from_the_log_is_displayed_as_text_never_run(hostile_run, tmp_path, open_page):
    out = tmp_path / "hostile.html"
    write_report([hostile_run], out)
    page, errors = open_page(out.as_uri())
    page.click("button.stage[data-stage='0']")
    assert page.evaluate("window.pwned") is None
    assert page.locator("script").count() == 2, "only the page's own data and code"
    assert page.locator("img:not(.chart)").count() == 0 and page.locator("b").count() == 0
    assert page.locator("pre.text", has_text=PAYLOAD).count() > 0
    page.locator("a.citation").first.click()
    assert "<script>" in page.locator("mark.cited").first.inner_text()
    assert page.evaluate("window.pwned") is None and errors == []


def serving(root: Path, poll_ms: int):
    srv = make_server(root, port=0, poll_ms=poll_ms)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(tmp_path):
    yield from serving(tmp_path, poll_ms=2000)


@pytest.fixture
def fast_server(tmp_path):
    """A server whose pages poll every 200 ms, for tests of what polling does."""
    yield from serving(tmp_path, poll_ms=200)


def half_written_run(small_run: Path, run: Path) -> list[str]:
    """A copy of the small run cut before stage 1 (a run in progress); returns the lines still to come."""
    shutil.copytree(small_run, run, ignore=shutil.ignore_patterns("summary.json"))
    lines = (run / EVENTS_FILE).read_text().splitlines(keepends=True)
    stage_1 = next(i for i, line in enumerate(lines) if '"stage_started"' in line and '"stage":1' in line)
    (run / EVENTS_FILE).write_text("".join(lines[:stage_1]))
    return lines[stage_1:]


def test_serve_refreshes_a_run_in_progress_in_place_even_when_rendering_is_slower_than_the_poll(
        small_run, fast_server, open_page, monkeypatch):
    renders = []

    def slow_read_run(run_dir, **options):  # each render takes 5 polls
        renders.append(run_dir)
        time.sleep(1.0)
        return read_run(run_dir, **options)

    monkeypatch.setattr(live, "read_run", slow_read_run)
    root, url = fast_server
    rest = half_written_run(small_run, root / "live")
    page, errors = open_page(f"{url}/run/live")
    assert page.locator("button.stage").count() == 1 and page.locator(".warning").count() == 1
    page.select_option("#filter", "verdicts")
    page.evaluate("window.notReloaded = true")  # gone if the page reloads instead of redrawing
    with (root / "live" / EVENTS_FILE).open("a") as log:
        log.write("".join(rest))
    page.wait_for_selector("button.stage[data-stage='1']")
    assert page.locator(".warning").count() == 0 and errors == []
    assert page.evaluate("window.notReloaded") is True and page.input_value("#filter") == "verdicts"
    assert len(renders) == 2, "one render per state of the log, however often the page polled"


def test_a_run_the_server_cannot_read_any_more_shows_a_stale_warning_and_is_not_asked_again(
        small_run, fast_server, open_page, monkeypatch):
    renders = []

    def failing_after_the_first(run_dir, **options):
        renders.append(run_dir)
        if len(renders) > 1:
            raise SimulatorError(str(run_dir), "", "cannot be read", "mend it")
        return read_run(run_dir, **options)

    monkeypatch.setattr(live, "read_run", failing_after_the_first)
    root, url = fast_server
    rest = half_written_run(small_run, root / "live")
    page, _ = open_page(f"{url}/run/live")
    with (root / "live" / EVENTS_FILE).open("a") as log:
        log.write("".join(rest))
    page.wait_for_selector(".warning.stale")
    assert "could not refresh" in page.locator(".warning.stale").inner_text()
    time.sleep(1.0)  # five more polls: the failed state of the log is not asked for again
    assert len(renders) == 2 and page.locator("button.stage").count() == 1


def test_serve_lists_the_runs_under_its_folder(server, small_run, open_page):
    root, url = server
    shutil.copytree(small_run, root / "sweep" / "0")
    page, errors = open_page(url + "/")
    page.click("a:text('sweep/0')")
    page.wait_for_selector("button.stage")
    assert page.url.split("#")[0].endswith("/run/sweep/0") and errors == []


def test_serve_refuses_paths_outside_its_folder(server, small_run):
    root, url = server
    shutil.copytree(small_run, root / "run")
    connection = http.client.HTTPConnection(url.removeprefix("http://"))
    for path in ("/run/../run", "/run/%2e%2e/%2e%2e/etc", "/run/..%2F..%2Fetc", "/stamp/../../etc/passwd"):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 404, path
    connection.request("GET", "/run/run")
    assert connection.getresponse().status == 200


def test_runs_with_the_same_folder_name_get_their_own_figures(small_run, tmp_path):
    written = write_report([small_run, small_run], tmp_path / "two.html")
    assert written[0].name == "two.html" and len({p.parent.name for p in written[1:]}) == 2
