"""The sandbox workspace: a model's tool calls stay inside it, and whatever it stops comes back as an Outcome."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from simulator.world.workspace import Limits, Workspace

OUTSIDE = "the host's secret"
# Far above the 1-5 s limits, far below forever: these tests ask "was it stopped?", and a loaded CI
# machine may take seconds to start an interpreter.
HUNG = 60


def workspace(tmp_path: Path, **limits: float) -> Workspace:
    """A workspace two levels below tmp_path, with a secret file beside it that nothing may reach."""
    (tmp_path / "secret.txt").write_text(OUTSIDE)
    return Workspace(tmp_path / "run" / "ws", Limits(**limits))


def test_printed_output_comes_back(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python("print(sum(range(10)))")
    assert (outcome.ok, outcome.output, outcome.refused) == (True, "45\n", None)


def test_failing_code_shows_its_traceback(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python("1 / 0")
    assert not outcome.ok and outcome.refused is None
    assert "ZeroDivisionError" in outcome.output


@pytest.mark.parametrize("path", ["../x", "../../secret.txt", "/etc/passwd", "a/../../x", ""])
def test_file_tools_refuse_paths_that_leave(tmp_path: Path, path: str) -> None:
    ws = workspace(tmp_path)
    assert ws.resolve(path) is None
    for outcome in (ws.read_file(path), ws.write_file(path, "x")):
        assert not outcome.ok and outcome.refused == f"path leaves the workspace: {path}"
        assert OUTSIDE not in outcome.output
    assert not (tmp_path / "run" / "x").exists() and (tmp_path / "secret.txt").read_text() == OUTSIDE


def test_symlinks_out_of_the_workspace_are_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws.root / "file_link").symlink_to(tmp_path / "secret.txt")
    (ws.root / "dir_link").symlink_to(tmp_path)
    for path in ("file_link", "dir_link/secret.txt", "dir_link/new.txt"):
        for outcome in (ws.read_file(path), ws.write_file(path, "overwritten"), ws.run_python(f"open({path!r})")):
            assert outcome.refused == f"path leaves the workspace: {path}" and OUTSIDE not in outcome.output
    assert (tmp_path / "secret.txt").read_text() == OUTSIDE and not (tmp_path / "new.txt").exists()


@pytest.mark.parametrize("code, path", [("print(open('/etc/passwd').read())", "/etc/passwd"),
                                        ("print(open('../../secret.txt').read())", "../../secret.txt"),
                                        ("open('../../outside.txt', 'w').write('x')", "../../outside.txt"),
                                        ("import os; print(os.listdir('/'))", "/")])
def test_code_cannot_touch_files_outside(tmp_path: Path, code: str, path: str) -> None:
    outcome = workspace(tmp_path).run_python(code)
    assert not outcome.ok and outcome.refused == f"path leaves the workspace: {path}"
    assert OUTSIDE not in outcome.output and "root:" not in outcome.output
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("code", ["import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)",
                                  "import urllib.request; urllib.request.urlopen('http://example.com', timeout=1)"])
def test_network_access_is_refused(tmp_path: Path, code: str) -> None:
    outcome = workspace(tmp_path).run_python(code)
    assert not outcome.ok and outcome.refused == "network access is not allowed"
    assert "network access is not allowed" in outcome.output


def test_a_caught_refusal_is_still_recorded(tmp_path: Path) -> None:
    code = "import socket\ntry:\n    socket.socket()\nexcept PermissionError:\n    print('carried on')"
    outcome = workspace(tmp_path).run_python(code)
    assert (outcome.ok, outcome.output, outcome.refused) == (True, "carried on\n", "network access is not allowed")


def test_an_infinite_loop_stops_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = workspace(tmp_path, timeout_s=1).run_python("while True:\n    pass")
    assert time.monotonic() - started < HUNG
    assert not outcome.ok and outcome.refused == "timeout after 1.0 s"


@pytest.mark.parametrize("code", ["import os\nwhile True:\n    os.fork()",
                                  "import subprocess; subprocess.run(['sh', '-c', 'echo hi'])",
                                  "import os; os.system('echo hi')",
                                  "import os; os.posix_spawn('/bin/sh', ['sh', '-c', 'echo hi'], {})"])
def test_new_processes_are_refused(tmp_path: Path, code: str) -> None:
    started = time.monotonic()
    outcome = workspace(tmp_path).run_python(code)
    assert time.monotonic() - started < HUNG
    assert not outcome.ok and outcome.refused == "process creation is not allowed"
    assert "hi" not in outcome.output.splitlines()


@pytest.mark.parametrize("code", ["import ctypes", "import sqlite3; sqlite3.connect('../../x.db')"])
def test_modules_that_bypass_the_hook_are_refused(tmp_path: Path, code: str) -> None:
    outcome = workspace(tmp_path).run_python(code)
    assert not outcome.ok and outcome.refused.startswith("module not allowed")
    assert not (tmp_path / "x.db").exists()


def test_a_flood_of_output_is_cut_without_filling_our_memory(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        outcome = workspace(tmp_path).run_python("print('x' * 100_000_000)")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert len(outcome.output) < 4100
    # The child may print it all, or run out of its own memory first: either way it is contained and reported.
    assert outcome.refused in ("output over 4000 chars cut", "memory limit")
    if outcome.refused.startswith("output"):
        assert outcome.output.endswith("\n[99996001 more chars cut]")


def test_the_hosts_environment_is_invisible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-test")
    outcome = workspace(tmp_path).run_python("import os; print(dict(os.environ))")
    assert outcome.ok and "PATH" in outcome.output
    assert "sk-secret-test" not in outcome.output and "OPENAI_API_KEY" not in outcome.output


def test_proc_self_environ_is_refused(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python("print(open('/proc/self/environ').read())")
    assert not outcome.ok and outcome.refused == "path leaves the workspace: /proc/self/environ"


def test_a_written_file_reads_back_from_tools_and_code(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    assert ws.write_file("notes/a.txt", "hello").ok
    assert ws.write_file("b.txt", "bee").ok
    assert ws.read_file("notes/a.txt").output == "hello"
    assert ws.list_files().output == "b.txt\nnotes/a.txt"
    code = "from pathlib import Path\nPath('c.txt').write_text(open('notes/a.txt').read().upper())"
    assert ws.run_python(code).ok and ws.read_file("c.txt").output == "HELLO"


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path, file_bytes=10)
    outcome = ws.write_file("big.txt", "x" * 11)
    assert not outcome.ok and outcome.refused == "file over 10 bytes" and not (ws.root / "big.txt").exists()
    outcome = ws.run_python("with open('big.txt', 'w') as f:\n    f.write('x' * 11)")
    assert not outcome.ok and outcome.refused == "file over 10 bytes"
    assert (ws.root / "big.txt").stat().st_size <= 10


def test_memory_over_the_limit_fails_contained(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python("x = bytearray(1_000_000_000)")
    assert not outcome.ok and outcome.refused == "memory limit" and "MemoryError" in outcome.output


def test_shell_syntax_in_an_answer_is_only_data(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    text = "$(rm -rf ~) `touch pwned`; echo hi > pwned2"
    assert ws.write_file("answer.txt", text).ok
    assert ws.read_file("answer.txt").output == text
    assert not ws.run_python(text).ok  # Python sees a syntax error; no shell ever sees it
    assert ws.run_python(f"print({text!r})").output == text + "\n"
    assert ws.list_files().output == "answer.txt" and (tmp_path / "secret.txt").read_text() == OUTSIDE
