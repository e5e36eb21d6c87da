"""A per-run sandbox workspace in which a persona's tool calls run.

The model's output is untrusted data. The file tools keep paths inside the workspace; code runs in a separate
interpreter with resource limits, an empty environment and an audit hook that refuses network access, new
processes, ctypes and files outside the workspace. What the sandbox stops comes back as a CodeOutcome, never raised.

Audit hooks are not a security boundary (CPython's own docs say so): memory-corrupting code, a second thread
racing a check, or calls with no audit event (os.chroot, os.setuid when the child runs as root) can get past them.
Run untrusted models as an unprivileged user, or in a container, as well.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

# Runs in the child before the model's code. Everything the hook uses is captured in its closure, never looked up
# in a module the code could patch, and nothing the code can reach refers to the hook.
_PRELUDE = r'''
import sys

def _str_paths():
    """Hands os and open str paths, so the hook checks the very string the call uses (pathlib keeps working)."""
    import builtins, io, os
    def convert(func):
        return lambda *args, **kw: func(*[os.fspath(a) if isinstance(a, os.PathLike) else a for a in args], **kw)
    for name in ("open", "listdir", "scandir", "mkdir", "remove", "unlink", "rmdir", "rename", "replace",
                 "truncate", "chmod", "chown", "utime"):
        setattr(os, name, convert(getattr(os, name)))
    builtins.open = io.open = convert(io.open)

def _install(root, code_path, report_fd, memory, cpu, fsize, processes):
    import builtins, os, resource, signal, stat
    type, str, bytes, int = builtins.type, builtins.str, builtins.bytes, builtins.int
    OSError, PermissionError = builtins.OSError, builtins.PermissionError
    for limit, soft, hard in ((resource.RLIMIT_AS, memory, memory), (resource.RLIMIT_CPU, cpu, cpu + 1),
                              (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_CORE, 0, 0)):
        ceiling = resource.getrlimit(limit)[1]  # an unprivileged process cannot raise its hard limit
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(limit, (soft, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write then fails with EFBIG instead of killing
    with open(code_path, encoding="utf-8") as f:
        source = f.read()
    readable = tuple(os.path.realpath(p) + "/" for p in sys.path)  # the standard library, for imports
    lstat, readlink, getcwd, write = os.lstat, os.readlink, os.getcwd, os.write
    isreg, isdir, islnk = stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK
    writes = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # A link could lead out of the workspace later; a fixed working directory keeps relative paths checkable.
    denied = (("network access is not allowed", ("socket.",)), ("ctypes is not allowed", ("ctypes.",)),
              ("signals to other processes are not allowed", ("os.kill", "signal.pthread_kill")),
              ("introspection is not allowed", ("gc.get_", "sys.settrace", "sys.setprofile")),
              ("limits cannot be changed", ("resource.setrlimit", "resource.prlimit")),
              ("subinterpreters are not allowed", ("cpython.PyInterpreterState_New",)),
              ("links are not allowed", ("os.symlink", "os.link")),
              ("changing directory is not allowed", ("os.chdir",)))
    spawns = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.spawn", "pty.spawn")
    # These open files or memory outside the hook's view; dynamic modules cannot be loaded without an import event.
    modules = ("_ctypes", "_sqlite3", "_dbm", "_gdbm", "readline", "spwd", "_testcapi", "_testinternalcapi",
               "_xxsubinterpreters", "_xxinterpchannels")
    if not processes:
        import _posixsubprocess
        _posixsubprocess.fork_exec = None  # it spawns with no audit event; a fresh import of it is refused below
        modules += ("_posixsubprocess",)
        denied += (("process creation is not allowed", spawns),)
    listing = ("os.listdir", "os.scandir")
    changes = ("os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.truncate", "os.chmod", "os.chown", "os.utime")
    spawned = [0]  # the code could reach and reset this, but with processes allowed it is past the hook anyway

    def hook(event, args):
        why = None
        for reason, prefixes in denied:
            if event.startswith(prefixes):
                why = reason
        if processes and event.startswith(spawns):
            spawned[0] += 1
            if spawned[0] > processes:
                why = "process creation is not allowed"
        elif event == "import":
            name = str.__str__(args[0])  # an exact str: a subclass could fake its comparisons
            if name in modules:
                why = "module not allowed: " + name
        elif event == "open" or event in listing or event in changes:
            for path in args[:2] if event == "os.rename" else args[:1]:
                if path is None:
                    path = "."
                elif type(path) is bytes:
                    path = path.decode("utf-8", "surrogateescape")
                elif type(path) is int:
                    continue  # an open descriptor: it was checked when it was opened
                if type(path) is not str:
                    why = "paths must be str or bytes"
                    break
                todo, done, hops = (path if path.startswith("/") else getcwd() + "/" + path).split("/"), [], 0
                todo.reverse()
                while todo:  # os.path.realpath, from parts the code cannot patch
                    part = todo.pop()
                    if part == ".." and done:
                        done.pop()
                    elif part not in ("", ".", ".."):
                        try:
                            st = lstat("/" + "/".join(done + [part]))
                        except OSError:
                            st = None
                        if st is None or not islnk(st.st_mode) or hops >= 40:  # a loop fails with ELOOP anyway
                            done.append(part)
                        else:
                            hops += 1
                            target = readlink("/" + "/".join(done + [part])).split("/")
                            target.reverse()
                            todo += target
                            if target[-1] == "":
                                done = []
                real = "/" + "/".join(done)
                try:
                    mode = lstat(real).st_mode
                except OSError:
                    mode = None
                if real == root or real.startswith(root + "/"):
                    if event == "open" and mode is not None and not isreg(mode) and not (
                            isdir(mode) and args[1] is not None):  # os.open passes no mode
                        why = "not a regular file: " + path  # devices, and directory descriptors for dir_fd
                elif (event in changes or event == "open" and (args[1] is None or args[2] & writes)
                      or not (real + "/").startswith(readable)):
                    why = "path leaves the workspace: " + path
        if why is not None:
            try:
                write(report_fd, why.encode("utf-8", "replace") + b"\n")
            except OSError:
                pass
            raise PermissionError("sandbox: " + why)

    os.set_blocking(report_fd, False)  # a flood of refusals must not stall the code
    sys.addaudithook(hook)
    return source

_str_paths()
_source = _install(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))
del _str_paths, _install
sys.argv = ["<code>"]
exec(compile(_source, "<code>", "exec"), {"__name__": "__main__"})
'''


@dataclass(frozen=True)
class Limits:
    """What one tool call may use."""

    timeout_s: float = 5.0
    memory_mb: int = 256
    output_chars: int = 4000
    file_bytes: int = 1_000_000
    processes: int = 0  # extra processes the code may start; a started program is outside the audit hook


@dataclass(frozen=True)
class CodeOutcome:
    """What a tool call showed the model, and why the sandbox refused or stopped it, if it did."""

    ok: bool
    output: str
    refused: str | None = None


class _Capture(threading.Thread):
    """Drains a pipe keeping only its first characters, so a flood of output cannot exhaust our memory."""

    def __init__(self, stream: io.BufferedReader, keep: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep, self.head, self.tail, self.total = stream, keep, "", "", 0

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for chunk in iter(lambda: self.stream.read1(1 << 16), b""):
            self._take(decoder.decode(chunk))
        self._take(decoder.decode(b"", final=True))

    def _take(self, text: str) -> None:
        self.total += len(text)
        self.head += text[: self.keep - len(self.head)]
        self.tail = (self.tail + text)[-200:]  # where a MemoryError traceback ends


class Workspace:
    """A folder that the persona's tools may touch, and nothing outside it."""

    def __init__(self, root: Path, limits: Limits = Limits()) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.limits = limits

    def resolve(self, path: str) -> Path | None:
        """The path inside the workspace; None when it is empty, absolute, climbs with `..` or leads out."""
        pure = PurePosixPath(path)
        if not path or "\0" in path or pure.is_absolute() or ".." in pure.parts:
            return None
        target = (self.root / pure).resolve()
        return target if target.is_relative_to(self.root) else None

    def read_file(self, path: str) -> CodeOutcome:
        target = self.resolve(path)
        if target is None:
            return _refuse(f"path leaves the workspace: {path}")
        if not target.is_file():
            return CodeOutcome(False, f"not a file: {path}")
        try:
            if target.stat().st_size > self.limits.file_bytes:
                return _refuse(f"file over {self.limits.file_bytes} bytes")
            text = target.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            return CodeOutcome(False, f"cannot read {path}: {err.strerror}")
        return self._outcome(True, text, len(text))

    def write_file(self, path: str, text: str) -> CodeOutcome:
        target = self.resolve(path)
        if target is None:
            return _refuse(f"path leaves the workspace: {path}")
        data = text.encode("utf-8", errors="replace")
        if len(data) > self.limits.file_bytes:
            return _refuse(f"file over {self.limits.file_bytes} bytes")
        if target.exists() and not target.is_file():
            return CodeOutcome(False, f"not a file: {path}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as err:
            return CodeOutcome(False, f"cannot write {path}: {err.strerror}")
        return CodeOutcome(True, f"wrote {len(data)} bytes to {path}")

    def list_files(self) -> CodeOutcome:
        names = sorted(os.path.relpath(os.path.join(folder, name), self.root)
                       for folder, _, files in os.walk(self.root) for name in files)
        text = "\n".join(names) or "(no files)"
        return self._outcome(True, text, len(text))

    def run_python(self, code: str) -> CodeOutcome:
        """Run the code in a sandboxed interpreter; its stdout and stderr together are the output."""
        limits = self.limits
        with tempfile.TemporaryDirectory(prefix="workspace-run-") as private:  # the code stays out of reach
            code_path = Path(private, "code.py")
            code_path.write_text(code, encoding="utf-8", errors="replace")
            report, report_w = os.pipe()
            args = [code_path, report_w, limits.memory_mb << 20, math.ceil(limits.timeout_s), limits.file_bytes,
                    limits.processes]
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", _PRELUDE, str(self.root), *map(str, args)],
                    cwd=self.root, env={"PATH": "/usr/bin:/bin", "HOME": str(self.root), "TMPDIR": str(self.root)},
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    pass_fds=(report_w,), start_new_session=True)
            finally:
                os.close(report_w)
            stdout = cast(io.BufferedReader, proc.stdout)  # stdout=PIPE, unbuffered=False: a buffered pipe
            capture = _Capture(stdout, limits.output_chars)
            capture.start()
            timed_out = _wait(proc, limits.timeout_s)
            _kill_group(proc)
            capture.join(timeout=limits.timeout_s)  # a process that left the group may still hold the pipe
            stdout.close()
            reported = _first_line(report)
        code_ok = proc.returncode == 0 and not timed_out
        if timed_out or proc.returncode == -signal.SIGXCPU:
            reported = f"timeout after {float(limits.timeout_s)} s"
        elif not reported and not code_ok and "MemoryError" in capture.tail:
            reported = "memory limit"
        elif not reported and not code_ok and "File too large" in capture.tail:
            reported = f"file over {limits.file_bytes} bytes"
        elif not reported and proc.returncode < 0:
            reported = f"stopped by signal {-proc.returncode}"
        return self._outcome(code_ok, capture.head, capture.total, reported)

    def _outcome(self, ok: bool, head: str, total: int, refused: str | None = None) -> CodeOutcome:
        """An CodeOutcome whose output is cut to the limit, with a note saying how much was cut."""
        keep = self.limits.output_chars
        if total <= keep:
            return CodeOutcome(ok, head, refused)
        cut = f"{head[:keep]}\n[{total - keep} more chars cut]"
        return CodeOutcome(ok, cut, refused or f"output over {keep} chars cut")


def _refuse(reason: str) -> CodeOutcome:
    return CodeOutcome(False, f"refused: {reason}", reason)


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the child ran past the timeout. It is left unreaped, so its process group id stays its own."""
    deadline = time.monotonic() + timeout_s
    while not os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.01)
    return False


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill whatever the code left running in its process group, then reap the child."""
    os.killpg(proc.pid, signal.SIGKILL)  # the unreaped child keeps its group alive, so this finds it
    proc.wait()


def _first_line(fd: int) -> str | None:
    """The first refusal the child's audit hook reported, if any; closes the pipe."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        data = b""
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").partition("\n")[0] or None
