"""`trajectories serve RUNS_DIR`: the report's page over a live folder of runs, on loopback by
default. Pages poll a cheap stamp (each log's size and modification time) and reload when a run
writes more, so runs in progress refresh as they go. It only reads the folder."""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from simulator.errors import SimulatorError
from simulator.log import EVENTS_FILE
from simulator.tables import find_runs, run_row
from simulator.viewer.charts import charts
from simulator.viewer.report import page, run_data
from simulator.views import read_run

POLL_MS = 2000


class RunsViewer:
    """What the server shows: the index of runs under a folder, and one page per run."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._pages: dict[str, tuple[str, str]] = {}  # run -> (stamp, page): redrawn only when the log grows
        self._lock = threading.Lock()

    def run_dir(self, relative: str) -> Path | None:
        """The run folder a URL names, only if it lies under the root (no '..' escapes)."""
        path = (self.root / unquote(relative)).resolve()
        return path if path.is_relative_to(self.root) and (path / EVENTS_FILE).is_file() else None

    def stamp(self, run_dir: Path | None = None) -> str:
        logs = [run_dir / EVENTS_FILE] if run_dir else [r / EVENTS_FILE for r in find_runs(self.root)]
        return ";".join(f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in logs if p.is_file())

    def index(self) -> str:
        rows = []
        for run in find_runs(self.root):
            try:
                relative = str(run.relative_to(self.root))
                rows.append({**run_row(run), "path": relative, "run": relative})
            except (ValueError, KeyError):
                continue  # a folder whose first line is not yet written, or not a run
        live = {"stamp": "/stamp/", "value": self.stamp(), "every_ms": POLL_MS}
        return page(f"Runs under {self.root}", {"runs": [], "index": rows, "root": str(self.root), "live": live})

    def run_page(self, relative: str, run_dir: Path) -> str:
        stamp = self.stamp(run_dir)
        with self._lock:
            cached = self._pages.get(relative)
        if cached and cached[0] == stamp:
            return cached[1]
        view = read_run(run_dir)
        live = {"stamp": f"/stamp/{relative}", "value": stamp, "every_ms": POLL_MS}
        html = page(f"Run {relative}", {"runs": [run_data(relative, view, charts(view), None)], "index": True,
                                        "live": live})
        with self._lock:
            self._pages[relative] = (stamp, html)
        return html


def handler(viewer: RunsViewer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(viewer.index(), "text/html")
            if path == "/stamp/":
                return self._send(viewer.stamp(), "text/plain")
            if path == "/favicon.ico":  # browsers ask; a 404 would be a console error
                self.send_response(HTTPStatus.NO_CONTENT)
                return self.end_headers()
            for prefix in ("/run/", "/stamp/"):
                if path.startswith(prefix):
                    run_dir = viewer.run_dir(path[len(prefix):])
                    if run_dir is None:
                        return self.send_error(HTTPStatus.NOT_FOUND, "no run folder there")
                    if prefix == "/stamp/":
                        return self._send(viewer.stamp(run_dir), "text/plain")
                    try:
                        return self._send(viewer.run_page(path[len(prefix):], run_dir), "text/html")
                    except SimulatorError as err:
                        return self.send_error(HTTPStatus.UNPROCESSABLE_ENTITY, str(err).splitlines()[0])
            self.send_error(HTTPStatus.NOT_FOUND)

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
                pass  # the page reloaded or closed before its answer arrived

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            pass  # polling every two seconds would flood the terminal

    return Handler


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    if not Path(root).is_dir():
        raise SimulatorError(str(root), "", "is not a folder", "give the folder your runs are in (runs/)")
    return ThreadingHTTPServer((host, port), handler(RunsViewer(root)))
