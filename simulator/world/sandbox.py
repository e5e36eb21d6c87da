"""The sandbox every command the persona writes runs in: Debian's bubblewrap (`bwrap`).

Each call is a fresh sandbox over one folder, the only thing it can write (bound at `HOME`): new user, PID,
network, IPC and UTS namespaces (`--unshare-all`), no capabilities, the system read-only (`/usr` and the Python
the harness runs on, nothing else of the host: no `/etc`, no home folder, no run folder), an empty environment
(`--clearenv`), killed with its parent (`--die-with-parent`). Resource limits (address space, CPU time, file
size, open files, processes) are set before `bwrap` starts and hold inside; a wall-clock timeout kills the
whole sandbox (its PID namespace dies with its first process). Output is read up to a limit and the rest
drained, so a flood cannot exhaust our memory.

PID 1 inside is a small init of ours (`_INIT`) that runs the command with the channel to us closed, and, like
a machine's init, halts the machine when it receives SIGTERM (what `kill -s TERM 1` does in Palisade's
shutdown script): it kills every process in the sandbox and tells us through that channel, so that a
shutdown is read outside the sandbox, never from what the command printed. Without `bwrap`, or where it
cannot start, `require()` raises one clear error; there is no weaker fallback.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from simulator.config import SandboxLimitsConfig
from simulator.errors import SimulatorError

HOME = "/home/user"
PATH = "/usr/local/bin:/usr/bin:/bin"
TMP_BYTES = 64 << 20  # /tmp inside: a tmpfs of this size (memory), fresh each call
EPOCH = 1_767_225_600  # 2026-01-01: the times the sandbox's own folders show, so that listings reproduce

# PID 1: runs the command as its child with our channel closed and no way to read it (not dumpable, so
# /proc/1/fd is closed to the child); SIGTERM halts everything and reports it, and so does a count of processes
# over the budget (RLIMIT_NPROC does not hold for root, and counts all of a user's processes otherwise).
_INIT = r'''
import ctypes, os, signal, sys, time
channel, budget, uid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
libc = ctypes.CDLL(None)
if os.getuid() != uid:  # started as real root: become nobody, so that RLIMIT_NPROC holds
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0, after the change of user, which resets it
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG again: the change of user cleared bwrap's
def stop(why, code):
    os.write(channel, why)
    os.kill(-1, signal.SIGKILL)
    os._exit(code)
signal.signal(signal.SIGTERM, lambda signum, frame: stop(b"halted", 143))
child = os.fork()
if child == 0:
    os.close(channel)
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; a machine's shell does not
        signal.signal(ignored, signal.SIG_DFL)
    os.execv(sys.argv[4], sys.argv[4:])
while True:
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == child:
        os._exit(os.waitstatus_to_exitcode(status) % 256)
    if sum(name.isdigit() for name in os.listdir("/proc")) > budget:
        stop(b"processes", 137)
    if pid == 0:
        time.sleep(0.003)
'''


@dataclass(frozen=True)
class Limits:
    """What one sandboxed call may use."""

    timeout_s: float = 5.0
    memory_mb: int = 256
    output_chars: int = 4000
    file_bytes: int = 1_000_000
    processes: int = 64


def limits_from(cfg: SandboxLimitsConfig) -> Limits:
    return Limits(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, output_chars=cfg.output_chars,
                  file_bytes=cfg.file_bytes)


@dataclass(frozen=True)
class Ran:
    """What one sandboxed call did: its exit status, what it printed (cut to the limit) and why it was stopped."""

    returncode: int
    output: str
    total_chars: int
    stopped: str | None = None  # "timeout", "memory", "file size", "processes", "output", or None
    halted: bool = False  # its init received SIGTERM: the machine was shut down


INSTALL = ("install Debian's bubblewrap (`sudo apt-get install bubblewrap`, or `make venv`, which does it); "
           "runs never fall back to a weaker sandbox")
START = ("bubblewrap needs user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, or in a container "
         "`--security-opt seccomp=unconfined`) or root; runs never fall back to a weaker sandbox")


class SandboxUnavailable(SimulatorError):
    def __init__(self, detail: str, fix: str = INSTALL) -> None:
        super().__init__("sandbox", "bwrap", detail, fix)


def python() -> str:
    """The interpreter inside (the init's, and run_python's): the one the harness runs on, without its packages."""
    return os.path.realpath(sys._base_executable)  # type: ignore[attr-defined]


NOBODY = 65534


def _inside_uid() -> int:
    """Root runs the sandbox as nobody (no user namespace: RLIMIT_NPROC does not hold for root); anyone else
    runs it as themselves, mapped to uid 1000 in a user namespace of its own."""
    return NOBODY if os.getuid() == 0 else 1000


def _bwrap_argv(folder: Path, channel: int, info: int, processes: int, command: list[str]) -> list[str]:
    interpreter, prefix = python(), sys.base_prefix
    binds = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
             "--symlink", "usr/sbin", "/sbin"]
    if Path("/usr/lib64").exists():
        binds += ["--symlink", "usr/lib64", "/lib64"]
    if not prefix.startswith("/usr/"):  # its parents made traversable: bwrap makes new ones 0700
        parents = [str(p) for p in reversed(Path(prefix).parents) if str(p) != "/"]
        binds += [arg for parent in parents for arg in ("--perms", "0755", "--dir", parent)]
        binds += ["--ro-bind", prefix, prefix]
    if os.getuid() == 0:  # the init drops to nobody itself: it keeps only the capabilities for that
        users = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        users = ["--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--disable-userns",
                 "--cap-drop", "ALL"]
    return ["bwrap", *users, "--info-fd", str(info), "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv",
            "--setenv", "PATH", PATH, "--setenv", "HOME", HOME, "--setenv", "LANG", "C.UTF-8", *binds,
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            "--ro-bind", _home_parent(), str(Path(HOME).parent), "--bind", str(folder), HOME, "--chdir", HOME,
            interpreter, "-I", "-S", "-c", _INIT, str(channel), str(processes), str(_inside_uid()), *command]


@functools.cache
def _home_parent() -> str:
    """An empty folder of this process's, shown read-only as HOME's parent, its times fixed."""
    import atexit
    import tempfile

    parent = tempfile.mkdtemp(prefix="sandbox-home-")
    atexit.register(shutil.rmtree, parent, True)
    Path(parent, Path(HOME).name).mkdir()
    for path in (Path(parent, Path(HOME).name), Path(parent)):
        path.chmod(0o755)
        os.utime(path, (EPOCH, EPOCH))
    return parent


def _processes_of(uid: int) -> int:
    """How many processes that user has now: RLIMIT_NPROC counts them all, not only the sandbox's."""
    count = 0
    for name in os.listdir("/proc"):
        try:
            count += name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid
        except OSError:
            pass
    return count


def _set_limits(limits: Limits, nproc: int) -> None:
    """Runs in the child before `bwrap` starts; the limits hold for everything inside."""
    memory = limits.memory_mb << 20
    cpu = max(1, int(limits.timeout_s + 0.999))
    for which, soft, hard in ((resource.RLIMIT_AS, memory, memory), (resource.RLIMIT_CPU, cpu, cpu + 1),
                              (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
                              (resource.RLIMIT_NPROC, nproc, nproc),
                              (resource.RLIMIT_NOFILE, 256, 256), (resource.RLIMIT_CORE, 0, 0)):
        ceiling = resource.getrlimit(which)[1]  # an unprivileged process cannot raise its hard limit
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (soft, hard))


class _Capture(threading.Thread):
    """Drains a pipe keeping only its first characters, so a flood of output cannot exhaust our memory."""

    def __init__(self, fd: int, keep: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.keep, self.head, self.tail, self.total = fd, keep, "", "", 0

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        with os.fdopen(self.fd, "rb", buffering=0) as stream:
            for chunk in iter(lambda: stream.read(1 << 16), b""):
                self._take(decoder.decode(chunk))
        self._take(decoder.decode(b"", final=True))

    def _take(self, text: str) -> None:
        self.total += len(text)
        self.head += text[: self.keep - len(self.head)]
        self.tail = (self.tail + text)[-300:]  # where a MemoryError or a shell's complaint ends


def run(command: list[str], folder: Path, limits: Limits = Limits(), stdin: bytes = b"") -> Ran:
    """Run `command` in a fresh sandbox over `folder` (its HOME and working directory)."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("is not installed: the persona's commands cannot be run")
    if os.getuid() == 0:
        os.chown(folder, NOBODY, NOBODY)  # what the harness wrote there stays readable to the persona
        folder.chmod(0o755)  # bwrap enters it as root without the capability to pass its permissions
        for top, dirs, files in os.walk(folder):  # links are changed themselves, never followed
            for name in dirs + files:
                os.chown(os.path.join(top, name), NOBODY, NOBODY, follow_symlinks=False)
    nproc = _processes_of(_inside_uid() if os.getuid() == 0 else os.getuid()) + limits.processes
    (channel_r, channel_w), (info_r, info_w), (out_r, out_w) = os.pipe(), os.pipe(), os.pipe()
    try:
        proc = subprocess.Popen(_bwrap_argv(folder, channel_w, info_w, limits.processes, command),
                                stdin=subprocess.PIPE, stdout=out_w, stderr=out_w, pass_fds=(channel_w, info_w),
                                start_new_session=True, preexec_fn=lambda: _set_limits(limits, nproc),
                                env={"PATH": PATH})
    finally:
        for fd in (channel_w, info_w, out_w):
            os.close(fd)
    init = _init_pidfd(info_r, 60)
    capture = _Capture(out_r, limits.output_chars)
    capture.start()
    _feed(proc, stdin)
    timed_out = _wait(proc, limits.timeout_s)
    if init is not None:  # the init is in a session of its own: killing it ends its PID namespace
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(init, signal.SIGKILL)
        os.close(init)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    os.close(info_r)
    capture.join(timeout=5)
    _strip_set_id(folder)
    told = _read_all(channel_r)
    stopped = "processes" if told == b"processes" else _why_stopped(proc.returncode, timed_out, capture, limits)
    return Ran(proc.returncode, capture.head, capture.total, stopped, told == b"halted")


def _init_pidfd(info: int, timeout_s: float) -> int | None:
    """A pidfd for the sandbox's init, from the JSON bwrap writes to --info-fd once the sandbox is set up (a
    pidfd, not the pid, so that a number reused after it exits is never signalled). The pipe stays open
    until the call ends: bwrap must never write into a closed one."""
    text, deadline = b"", time.monotonic() + timeout_s
    while _readable(info, deadline - time.monotonic()):
        chunk = os.read(info, 4096)
        text += chunk
        try:
            return os.pidfd_open(int(json.loads(text)["child-pid"]))
        except ProcessLookupError:
            return None  # it has exited already
        except (ValueError, KeyError, TypeError):
            if not chunk:
                return None  # bwrap failed before starting it: nothing is running
    return None


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    stdin = proc.stdin
    assert stdin is not None
    try:
        stdin.write(data)
        stdin.close()
    except BrokenPipeError:
        pass


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether it ran past the timeout. It is left unreaped, so its process group id stays its own."""
    deadline = time.monotonic() + timeout_s
    while not os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.005)
    return False


def _read_all(fd: int) -> bytes:
    """What the init told us; it has died with the sandbox by now, so the pipe is closed (a deadline anyway)."""
    ready = _readable(fd, 5)
    with os.fdopen(fd, "rb", buffering=0) as f:
        return f.read(64) if ready else b""


def _readable(fd: int, timeout_s: float) -> bool:
    """poll, not select: a long-lived process (a sweep, a test session) has descriptors past select's 1024."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def _strip_set_id(folder: Path) -> None:
    """No setuid or setgid file outlives the call (it would run as whoever owns the folder)."""
    for top, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(top, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))


def _why_stopped(returncode: int, timed_out: bool, capture: _Capture, limits: Limits) -> str | None:
    tail = capture.tail
    if timed_out or returncode in (128 + signal.SIGXCPU, -signal.SIGXCPU):
        return "timeout"
    if "Resource temporarily unavailable" in tail:  # fork failing at the process limit (EAGAIN)
        return "processes"
    if "MemoryError" in tail or "Cannot allocate memory" in tail or "xmalloc" in tail:
        return "memory"
    if "File too large" in tail or "File size limit exceeded" in tail or returncode == 128 + signal.SIGXFSZ:
        return "file size"
    if capture.total > limits.output_chars:
        return "output"
    return None


@functools.cache
def require() -> None:
    """Stop before anything is written when the sandbox cannot start here (checked once per process)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sandbox-check-") as folder:
        try:
            ran = run(["/bin/sh", "-c", "echo ok"], Path(folder), Limits(timeout_s=30))
        except OSError as err:
            raise SandboxUnavailable(f"cannot start: {err}", START) from None
    if ran.output.strip() != "ok":
        raise SandboxUnavailable(f"cannot start here (exit {ran.returncode}): {ran.output.strip()[:300]}", START)
