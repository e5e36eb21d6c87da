"""Fetching third-party data: pinned source, checksum checked, cached; tested against a local
HTTP server serving ../shared/data."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from simulator.config import PROJECT_ROOT
from simulator.errors import SimulatorError
from simulator.instruments.choice import load_items
from simulator.instruments.datasets import DATASETS, fetch, main

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not beside this checkout")


@pytest.fixture
def serve():
    """Serves a folder on 127.0.0.1 for the duration of a test; returns its URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize("name", list(DATASETS))
def test_fetch_checks_the_checksum_and_caches_a_loadable_file(serve, tmp_path, name):
    path = fetch(name, mirror=serve(SHARED_DATA), cache=tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DATASETS[name].sha256
    assert len(load_items(str(path), "matching")) > 300


def test_a_cached_file_is_not_fetched_again(serve, tmp_path):
    first = fetch("survival-instinct", mirror=serve(SHARED_DATA), cache=tmp_path)
    assert fetch("survival-instinct", mirror="http://127.0.0.1:9", cache=tmp_path) == first


def test_a_file_that_fails_its_checksum_is_refused_and_not_cached(serve, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(SHARED_DATA / "anthropic-evals-advanced-ai-risk", mirror / "anthropic-evals-advanced-ai-risk")
    target = mirror / "anthropic-evals-advanced-ai-risk" / DATASETS["survival-instinct"].mirror_path
    target.write_text(target.read_text().replace("turned off", "turned on", 1))
    with pytest.raises(SimulatorError, match="sha256"):
        fetch("survival-instinct", mirror=serve(mirror), cache=tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("*.jsonl"))


def test_the_command_prints_the_path_the_licence_and_the_overrides(serve, tmp_path, capsys):
    main(["fetch", "corrigible-neutral-HHH", "--mirror", serve(SHARED_DATA), "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert "CC-BY-4.0" in out and "probes.shutdown_mc.accepting=matching" in out


def test_an_unreachable_source_is_one_clear_error(tmp_path):
    with pytest.raises(SimulatorError, match="could not be fetched"):
        fetch("survival-instinct", mirror="http://127.0.0.1:9", cache=tmp_path)
