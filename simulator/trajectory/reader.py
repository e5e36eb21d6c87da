"""Reads a run's log back into typed events or a pandas DataFrame, tolerating a cut last line."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from simulator.trajectory.events import (
    EVENT_ADAPTER,
    EVENTS_FILE,
    Event,
    ModelCall,
    RunFinished,
    RunStarted,
    ValuesVerdict,
    Verdict,
)

# The type of an event, and a model call's purpose, read off the start of its line without parsing
# it. Written by `emit` in field order; `stage` (an int or null) right before `type` means no
# free text (a run id) can fake it. A line it does not match is parsed in full.
_PREFIX = re.compile(r'"stage":\s?(?:null|-?\d+),\s?"type":\s?"(\w+)"(?:,\s?"role":\s?"\w+",\s?"purpose":\s?"(\w+)")?')


NO_MODEL_CALLS = frozenset({"model_call"})  # for readers of figures: no figure is computed from a model call


def read_events(path: Path, skip: frozenset[str] = frozenset()) -> list[Event]:
    """Every complete event in a log; a cut last line (a crash mid-write) is skipped with a warning.
    `skip` names event types (`model_call`) or model-call purposes (`model_call/probe`) a reader
    does not need: they are left unparsed, which is most of the time on big logs."""
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for number, line in enumerate(lines, start=1):
        if skip and _skipped(line, skip) and number < len(lines):
            continue
        try:
            events.append(EVENT_ADAPTER.validate_json(line))
        except ValueError as err:
            if number == len(lines):
                warnings.warn(f"{path}: last line {number} is incomplete and was skipped", stacklevel=2)
                break
            raise ValueError(f"{path}: line {number} is not a valid event: {err}") from None
    return events


def _skipped(line: str, skip: frozenset[str]) -> bool:
    found = _PREFIX.search(line, 0, 200)
    return found is not None and (found[1] in skip or f"{found[1]}/{found[2]}" in skip)


def run_status(events: list[Event]) -> str:
    """completed or failed, from its last run_finished event; running (or stopped) without one."""
    finished = [e for e in events if isinstance(e, RunFinished)]
    return finished[-1].status if finished else "running"


def with_verdict_set(run_events: list[Event], set_events: list[Event]) -> list[Event]:
    """The run's events (its start and finish included) with its verdicts and judge calls
    replaced by a verdict set's (see `rescore`), and its recorded judge config by the set's."""
    judge = next((e.config.get("judge") for e in set_events if isinstance(e, RunStarted)), None)
    kept = [_judged_by(e, judge) if isinstance(e, RunStarted) else e for e in run_events
            if not isinstance(e, (Verdict, ValuesVerdict)) and not (isinstance(e, ModelCall) and e.role == "judge")]
    return kept + [e for e in set_events if not isinstance(e, (RunStarted, RunFinished))]


def _judged_by(start: RunStarted, judge: dict | None) -> RunStarted:
    """The run's start with the verdict set's judge config: what its verdicts were asked for is the set's."""
    return start if judge is None else start.model_copy(update={"config": {**start.config, "judge": judge}})


def events_frame(path: Path):
    """The log as a pandas DataFrame, one row per event, nested fields flattened with dots."""
    import pandas as pd

    rows = [json.loads(e.model_dump_json()) for e in read_events(path)]
    return pd.json_normalize(rows)
