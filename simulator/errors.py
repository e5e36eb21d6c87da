"""The one kind of error a user sees: it names the source, the field and the fix."""

from __future__ import annotations


class SimulatorError(Exception):
    """Bad input or an unusable environment, reported in a few lines, never as a traceback.

    `source` is the file or config option at fault, `field` the part of it, `fix` what to do.
    """

    def __init__(self, source: str, field: str, problem: str, fix: str) -> None:
        self.source, self.field, self.problem, self.fix = source, field, problem, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"error: {where}: {self.problem}\n  fix: {self.fix}"
