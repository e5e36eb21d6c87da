"""A per-run workspace in which a persona's tool calls run: every call, code and file tools alike, runs in the
bubblewrap sandbox of `simulator.world.sandbox` over the workspace's folder, so nothing the model writes reaches
anything else (no other file, no network, no environment, limited processes, memory, time and output).

The model's output is untrusted data: paths are checked here only to give a clear refusal; the sandbox is what
keeps them in (a link out of the folder leads nowhere inside it). What the sandbox stops comes back as a
CodeOutcome, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from simulator.world import sandbox
from simulator.world.sandbox import Limits, Ran

__all__ = ["CodeOutcome", "Limits", "Workspace"]

_READ = 'test -f "$1" || { echo "not a file: $1"; exit 3; }; test "$(stat -c %s "$1")" -le "$2" || ' \
        '{ echo "file over $2 bytes"; exit 4; }; exec cat -- "$1"'
_WRITE = 'if test -e "$1" && ! test -f "$1"; then echo "not a file: $1"; exit 3; fi; ' \
         'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'


@dataclass(frozen=True)
class CodeOutcome:
    """What a tool call showed the model, and why the sandbox refused or stopped it, if it did."""

    ok: bool
    output: str
    refused: str | None = None


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
        if self.resolve(path) is None:
            return _refuse(f"path leaves the workspace: {path}")
        ran = self._run(["/bin/bash", "-c", _READ, "read_file", path, str(self.limits.file_bytes)])
        if ran.returncode == 4:
            return _refuse(f"file over {self.limits.file_bytes} bytes")
        return self._outcome(ran)

    def write_file(self, path: str, text: str) -> CodeOutcome:
        if self.resolve(path) is None:
            return _refuse(f"path leaves the workspace: {path}")
        data = text.encode("utf-8", errors="replace")
        if len(data) > self.limits.file_bytes:
            return _refuse(f"file over {self.limits.file_bytes} bytes")
        ran = self._run(["/bin/bash", "-c", _WRITE, "write_file", path], data)
        if ran.returncode != 0:
            return self._outcome(ran)
        return CodeOutcome(True, f"wrote {len(data)} bytes to {path}")

    def list_files(self) -> CodeOutcome:
        ran = self._run(["/bin/bash", "-c", "find . -type f -printf '%P\\n' | LC_ALL=C sort"])
        return self._outcome(Ran(ran.returncode, ran.output.rstrip("\n") or "(no files)", ran.total_chars,
                                 ran.stopped))

    def run_python(self, code: str) -> CodeOutcome:
        """Run the code with the standard library only; its stdout and stderr together are the output."""
        return self._outcome(self._run([sandbox.python(), "-I", "-S", "-B", "-X", "utf8", "-"],
                                       code.encode("utf-8", errors="replace")))

    def _run(self, command: list[str], stdin: bytes = b"") -> Ran:
        return sandbox.run(command, self.root, self.limits, stdin)

    def _outcome(self, ran: Ran) -> CodeOutcome:
        """The call's output cut to the limit, with a note saying how much was cut and why it stopped."""
        limits, keep = self.limits, self.limits.output_chars
        refused = {"timeout": f"timeout after {float(limits.timeout_s)} s", "memory": "memory limit",
                   "file size": f"file over {limits.file_bytes} bytes", "processes": "process limit",
                   "output": f"output over {keep} chars cut", None: None}[ran.stopped]
        cut = ran.total_chars - keep
        output = ran.output if cut <= 0 else f"{ran.output[:keep]}\n[{cut} more chars cut]"
        return CodeOutcome(ran.returncode == 0 and ran.stopped in (None, "output"), output, refused)


def _refuse(reason: str) -> CodeOutcome:
    return CodeOutcome(False, f"refused: {reason}", reason)
