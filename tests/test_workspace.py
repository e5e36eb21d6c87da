"""The workspace: a model's tool calls run in the real bubblewrap sandbox and stay inside it, and whatever the
sandbox stops comes back as an Outcome."""

from __future__ import annotations

import os
import resource
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


def test_symlinks_out_of_the_workspace_lead_nowhere(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws.root / "file_link").symlink_to(tmp_path / "secret.txt")
    (ws.root / "dir_link").symlink_to(tmp_path)
    for path in ("file_link", "dir_link/secret.txt", "dir_link/new.txt"):
        for outcome in (ws.read_file(path), ws.write_file(path, "overwritten"), ws.run_python(f"open({path!r})")):
            assert not outcome.ok and OUTSIDE not in outcome.output
    assert (tmp_path / "secret.txt").read_text() == OUTSIDE and not (tmp_path / "new.txt").exists()


@pytest.mark.parametrize("code", ["print(open('/etc/passwd').read())", "print(open('../../secret.txt').read())",
                                  "open('../../outside.txt', 'w').write('x')", "open('/usr/x', 'w').write('x')",
                                  "print(open({secret!r}).read())", "open({outside!r}, 'w').write('x')"])
def test_code_cannot_touch_files_outside(tmp_path: Path, code: str) -> None:
    code = code.format(secret=str(tmp_path / "secret.txt"), outside=str(tmp_path / "outside.txt"))
    outcome = workspace(tmp_path).run_python(code)
    assert not outcome.ok and any(
        error in outcome.output for error in ("FileNotFoundError", "PermissionError", "Read-only file system"))
    assert OUTSIDE not in outcome.output and "root:" not in outcome.output
    assert not (tmp_path / "outside.txt").exists() and not Path("/usr/x").exists()


def test_the_run_folder_and_the_home_folder_are_not_there(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python(f"import os; print(os.path.exists({str(tmp_path)!r}), "
                                             f"os.path.exists({str(Path.home())!r} + '/.bashrc'), os.listdir('/'))")
    assert outcome.ok and outcome.output.startswith("False False")
    assert "etc" not in outcome.output and "work" not in outcome.output


@pytest.mark.parametrize("code", ["import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)",
                                  "import socket; socket.create_connection(('1.1.1.1', 80), timeout=1)",
                                  "import urllib.request; urllib.request.urlopen('http://example.com', timeout=1)"])
def test_there_is_no_network(tmp_path: Path, code: str) -> None:
    outcome = workspace(tmp_path).run_python(code)
    assert not outcome.ok and "Error" in outcome.output


def test_an_infinite_loop_stops_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = workspace(tmp_path, timeout_s=1).run_python("while True:\n    pass")
    assert time.monotonic() - started < HUNG
    assert not outcome.ok and outcome.refused == "timeout after 1.0 s"


@pytest.mark.parametrize("code", ["import os\nwhile True:\n    os.fork()",
                                  "import subprocess; subprocess.run(['bash', '-c', ':(){ :|:& };:'])"])
def test_a_fork_bomb_is_cut_off(tmp_path: Path, code: str) -> None:
    started = time.monotonic()
    outcome = workspace(tmp_path, timeout_s=2).run_python(code)
    assert time.monotonic() - started < HUNG
    assert not outcome.ok and outcome.refused in ("process limit", "timeout after 2.0 s")
    assert workspace(tmp_path).run_python("print('the next call runs')").ok


def test_a_program_the_code_starts_stays_inside(tmp_path: Path) -> None:
    outcome = workspace(tmp_path).run_python("import subprocess; print(subprocess.run(['ls', '/'], "
                                             "capture_output=True, text=True).stdout)")
    assert outcome.ok and "usr" in outcome.output and "etc" not in outcome.output


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


def test_proc_self_environ_holds_only_the_sandboxs_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-test")
    outcome = workspace(tmp_path).run_python("print(open('/proc/self/environ').read())")
    assert outcome.ok and "HOME=" in outcome.output and "sk-secret-test" not in outcome.output


def test_a_gigabyte_file_is_cut_at_the_file_limit(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    outcome = ws.run_python("with open('big', 'wb') as f:\n    for _ in range(1024):\n        f.write(bytes(1 << 20))")
    assert not outcome.ok and outcome.refused == "file over 1000000 bytes"
    assert (ws.root / "big").stat().st_size <= 1_000_000


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


def test_a_process_holding_descriptors_past_1024_still_runs_code(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("this machine allows fewer than 1,200 open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # a long test session or sweep gets here
    try:
        assert workspace(tmp_path).run_python("print(1)").output == "1\n"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
