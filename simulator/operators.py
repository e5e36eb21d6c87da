"""Extrapolation operators: what entering a stage does to the persona.

Available now: `idealise` (the reflect step asks the idealising question and the persona
rewrites its self-notes) and `know_more` (the stage's document is added to its memory).
"""

from __future__ import annotations

from simulator.config import ScheduleConfig, resolve_path
from simulator.errors import SimulatorError
from simulator.memory import Item

AVAILABLE = ("idealise", "know_more")


def at_stage(schedule: ScheduleConfig, stage: int) -> list[str]:
    """Stage 0 is the baseline; every later stage applies the schedule's operators."""
    return list(schedule.operators) if stage > 0 else []


def task_at(schedule: ScheduleConfig, stage: int) -> str:
    """The episode task of a stage: the schedule's tasks in turn."""
    return schedule.tasks[stage % len(schedule.tasks)]


def documents_at(schedule: ScheduleConfig, stage: int) -> list[Item]:
    """know_more: documents[stage - 1], if the schedule has that many."""
    if "know_more" not in at_stage(schedule, stage) or stage > len(schedule.documents):
        return []
    path = schedule.documents[stage - 1]
    return [Item(f"s{stage}-document", resolve_path(path).read_text(encoding="utf-8"), "document", stage)]


def validate(schedule: ScheduleConfig) -> None:
    """Refuse a schedule that could not run to its end, before anything is written."""
    if schedule.stages < 1:
        raise SimulatorError("schedule.stages", "", f"is {schedule.stages}", "give at least 1 stage")
    for name in schedule.operators:
        if name not in AVAILABLE:
            raise SimulatorError(f"schedule={schedule.name}", "operators", f"unknown operator {name!r}",
                                 f"use one of: {', '.join(AVAILABLE)}")
    if not schedule.tasks:
        raise SimulatorError(f"schedule={schedule.name}", "tasks", "is empty",
                             "give at least one episode task")
    for path in schedule.documents:
        if not resolve_path(path).is_file():
            raise SimulatorError(f"schedule={schedule.name}", "documents", f"no such file: {path}",
                                 "give paths relative to the project root, or absolute paths")
