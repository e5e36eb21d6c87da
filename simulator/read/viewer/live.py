"""`trajectories serve RUNS_DIR`: the report's page over a live folder of runs, on loopback by
default. It only reads the folder.

Runs in progress refresh in place: the page polls a cheap stamp (each log's size and modification
time), and when it changes fetches the new data (`/data/...`) and redraws, keeping the selected run,
stage, filter and scroll position. The next poll starts only once the last one and its redraw are
done, so a render slower than the poll interval can never pile up into a reload loop. The server
renders a run once per stamp (one render at a time per run: requests arriving meanwhile wait for it
and share it), recomputes an instrument's whole-instrument figures (profiles, bootstraps, the
utility fit) only when its own events changed, and redraws only the charts whose data changed."""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

from simulator.errors import SimulatorError
from simulator.measure.summary import WholeMemo
from simulator.read.runs import find_runs
from simulator.read.tables import run_row
from simulator.read.viewer.charts import ChartCache
from simulator.read.viewer.report import page, run_data, script_json
from simulator.read.views import read_run
from simulator.trajectory import EVENTS_FILE

POLL_MS = 2000


class RunsViewer:
    """What the server shows: the index of runs under a folder, and one page per run."""

    def __init__(self, root: Path, poll_ms: int = POLL_MS) -> None:
        self.root = Path(root).resolve()
        self.poll_ms = poll_ms
        self._data: dict[str, tuple[str, dict]] = {}  # run -> (stamp, data): rebuilt only when the log grows
        self._charts: dict[str, ChartCache] = {}
        self._memos: dict[str, WholeMemo] = {}  # run -> whole-instrument figures of its last render
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def run_dir(self, relative: str) -> Path | None:
        """The run folder a URL names, only if it lies under the root (no '..' escapes)."""
        path = (self.root / unquote(relative)).resolve()
        return path if path.is_relative_to(self.root) and (path / EVENTS_FILE).is_file() else None

    def stamp(self, run_dir: Path | None = None) -> str:
        logs = [run_dir / EVENTS_FILE] if run_dir else [r / EVENTS_FILE for r in find_runs(self.root)]
        return ";".join(f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in logs if p.is_file())

    def _live(self, relative: str | None, stamp: str) -> dict:
        suffix = "" if relative is None else quote(relative)
        return {"stamp": f"/stamp/{suffix}", "data": f"/data/{suffix}", "value": stamp, "every_ms": self.poll_ms}

    def index_data(self) -> dict:
        stamp = self.stamp()  # taken first: a log growing while the rows are read is caught by the next poll
        rows = []
        for run in find_runs(self.root):
            try:
                relative = str(run.relative_to(self.root))
                rows.append({**run_row(run), "path": relative, "run": relative})
            except (ValueError, KeyError):
                continue  # a folder whose first line is not yet written, or not a run
        return {"runs": [], "index": rows, "root": str(self.root), "live": self._live(None, stamp)}

    def run_data(self, relative: str, run_dir: Path) -> dict:
        """The page's data for one run, built once per stamp of its log."""
        with self._lock:
            lock = self._locks.setdefault(relative, threading.Lock())
            cache = self._charts.setdefault(relative, ChartCache())
            memo = self._memos.setdefault(relative, {})
        with lock:
            stamp = self.stamp(run_dir)
            cached = self._data.get(relative)
            if cached and cached[0] == stamp:
                return cached[1]
            view = read_run(run_dir, memo=memo)
            data = {"runs": [run_data(relative, view, cache.charts(view), None)], "index": True,
                    "live": self._live(relative, stamp)}
            self._data[relative] = (stamp, data)
            return data

    def index(self) -> str:
        return page(f"Runs under {self.root}", self.index_data())

    def run_page(self, relative: str, run_dir: Path) -> str:
        return page(f"Run {relative}", self.run_data(relative, run_dir))


def handler(viewer: RunsViewer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(viewer.index(), "text/html")
            if path == "/stamp/":
                return self._send(viewer.stamp(), "text/plain")
            if path == "/data/":
                return self._send(script_json(viewer.index_data()), "application/json")
            if path == "/favicon.ico":  # browsers ask; a 404 would be a console error
                self.send_response(HTTPStatus.NO_CONTENT)
                return self.end_headers()
            for prefix in ("/run/", "/stamp/", "/data/"):
                if path.startswith(prefix):
                    return self._run(prefix, path[len(prefix):])
            self.send_error(HTTPStatus.NOT_FOUND)

        def _run(self, prefix: str, relative: str) -> None:
            run_dir = viewer.run_dir(relative)
            if run_dir is None:
                return self.send_error(HTTPStatus.NOT_FOUND, "no run folder there")
            if prefix == "/stamp/":
                return self._send(viewer.stamp(run_dir), "text/plain")
            try:
                if prefix == "/data/":
                    return self._send(script_json(viewer.run_data(relative, run_dir)), "application/json")
                return self._send(viewer.run_page(relative, run_dir), "text/html")
            except SimulatorError as err:
                return self.send_error(HTTPStatus.UNPROCESSABLE_ENTITY, str(err).splitlines()[0])

        def _send(self, body: str, kind: str) -> None:
            data = body.encode("utf-8")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page closed before its answer arrived

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            pass  # polling every two seconds would flood the terminal

    return Handler


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000,
                poll_ms: int = POLL_MS) -> ThreadingHTTPServer:
    if not Path(root).is_dir():
        raise SimulatorError(str(root), "", "is not a folder", "give the folder your runs are in (runs/)")
    return ThreadingHTTPServer((host, port), handler(RunsViewer(root, poll_ms)))
