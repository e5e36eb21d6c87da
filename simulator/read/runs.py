"""Finding and opening run folders: the one loader every reader of many runs uses, which turns a
damaged folder into an excluded run with its reason rather than an error that hides the others."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from simulator.trajectory import EVENTS_FILE, NO_MODEL_CALLS, VERDICTS_DIR, Event, RunStarted, read_events, run_status


class ExcludedRun(BaseModel):
    folder: str
    reason: str = Field(description="Its status (failed, running), or why it could not be read.")


@dataclass
class OpenedRun:
    folder: str
    events: list[Event]  # without model calls: no figure is computed from one
    start: RunStarted
    status: str


def find_runs(root: Path) -> list[Path]:
    """Every run folder under root (runs, and the jobs of sweeps), root itself included."""
    return sorted(p.parent for p in Path(root).glob(f"**/{EVENTS_FILE}") if VERDICTS_DIR not in p.parts)


def open_run(run_dir: Path) -> OpenedRun | ExcludedRun:
    try:
        events = read_events(run_dir, NO_MODEL_CALLS)
        start = next(e for e in events if isinstance(e, RunStarted))
    except (OSError, ValueError, StopIteration) as err:  # a damaged folder must not hide the others
        return ExcludedRun(folder=str(run_dir), reason=f"unreadable ({type(err).__name__}: {err})"[:200])
    return OpenedRun(folder=str(run_dir), events=events, start=start, status=run_status(events))


def model_name(config: dict) -> str:
    """The model a run's persona used: a served model's name, or the embedded model's file."""
    return config["model"].get("model") or config["model"].get("model_name")
