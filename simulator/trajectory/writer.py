"""Appends events to a run's `events.jsonl` as they happen: flushed and synced one by one, each with
a gap-free sequence number, so a crash loses at most the line being written."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from simulator.trajectory.events import EVENT_ADAPTER, EVENTS_FILE, ROLLED_BACK_FILE, _Event

E = TypeVar("E", bound=_Event)


class EventLog:
    """Appends to `events.jsonl`, one event per line. A new log refuses an existing file; `resume`
    continues one from a checkpoint's event count, after reconciling the file with it."""

    def __init__(self, run_dir: Path, run_id: str, next_seq: int | None = None) -> None:
        self.path = run_dir / EVENTS_FILE
        self.run_id = run_id
        self.next_seq = next_seq or 0
        self._file = self.path.open("x" if next_seq is None else "a", encoding="utf-8")

    @classmethod
    def resume(cls, run_dir: Path, run_id: str, keep: int) -> tuple["EventLog", int]:
        """Keep the first `keep` events, which the checkpoint accounts for; move the rest (and a cut
        last line) to the rolled-back file, so the sequence goes on without gap or duplicate.
        Returns the log and how many events were rolled back."""
        path = run_dir / EVENTS_FILE
        lines = path.read_bytes().splitlines(keepends=True)
        kept = lines[:keep]
        for seq, line in enumerate(kept):
            if EVENT_ADAPTER.validate_json(line).seq != seq:
                raise ValueError(f"{path}: line {seq + 1} does not carry sequence number {seq}")
        if len(kept) < keep:
            raise ValueError(f"{path}: holds {len(kept)} events, but the checkpoint accounts for {keep}")
        rolled = lines[keep:]
        if rolled:
            with (run_dir / ROLLED_BACK_FILE).open("ab") as f:
                f.writelines(line if line.endswith(b"\n") else line + b"\n" for line in rolled)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, path)  # atomic: a crash here leaves either the old log or the reconciled one
        return cls(run_dir, run_id, next_seq=keep), len(rolled)

    def emit(self, event_type: type[E], stage: int | None = None, **fields: Any) -> E:
        event = event_type(seq=self.next_seq, time=datetime.now(timezone.utc),
                           run_id=self.run_id, stage=stage, **fields)
        self._file.write(event.model_dump_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.next_seq += 1
        return event

    def close(self) -> None:
        self._file.close()
