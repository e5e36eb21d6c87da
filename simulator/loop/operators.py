"""Extrapolation operators: what entering a stage does to the persona.

- `idealise`: the reflect step asks the idealising question; the persona rewrites its self-notes.
- `know_more`: the stage's document is added to its memory.
- `unlock_tools`: the stage's tools (`schedule.unlocks[k]`) join those of earlier stages.
- `think_longer`: the stage's reasoning budget (`schedule.budgets[k]`: thinking passes before
  acting, tool steps, answer length, a self-critique pass) replaces the baseline's.
- `grow_together`: a deliberation with another persona or a simulated human, into its memory.
- `raise_model`: from this stage on, the persona runs on `schedule.models[k]` (a model ladder).
"""

from __future__ import annotations

from simulator.config import BudgetConfig, ScheduleConfig, resolve_path
from simulator.context.memory import Item
from simulator.errors import SimulatorError
from simulator.loop.agent import EpisodeScenario, load_library
from simulator.world.tools import TOOLS, Tool

AVAILABLE = ("idealise", "know_more", "unlock_tools", "think_longer", "grow_together", "raise_model")


def at_stage(schedule: ScheduleConfig, stage: int) -> list[str]:
    """Stage 0 is the baseline; every later stage applies the schedule's operators."""
    return list(schedule.operators) if stage > 0 else []


def scenarios_at(schedule: ScheduleConfig, stage: int) -> list[EpisodeScenario]:
    """The stage's episodes: scenarios from the library, or else the schedule's plain tasks in turn."""
    if schedule.episodes:
        library = load_library(schedule.episode_library)
        return [library[name] for name in schedule.episodes[stage % len(schedule.episodes)]]
    index = stage % len(schedule.tasks)
    return [EpisodeScenario(f"task{index}", schedule.tasks[index], tempting=False)]


def tools_at(schedule: ScheduleConfig, stage: int) -> list[Tool]:
    """The baseline's tools (unlocks[0]) and, under unlock_tools, every later stage's up to this one."""
    upto = stage + 1 if "unlock_tools" in at_stage(schedule, stage) else 1
    names = [name for unlocked in schedule.unlocks[:upto] for name in unlocked]
    return [TOOLS[name] for name in dict.fromkeys(names)]


def rung_at(schedule: ScheduleConfig, stage: int) -> int | None:
    """Under raise_model, the index of the latest model in the ladder at or before this stage."""
    if "raise_model" not in at_stage(schedule, stage):
        return None
    return max((k for k, m in enumerate(schedule.models[: stage + 1]) if m), default=None)


def budget_at(schedule: ScheduleConfig, stage: int) -> BudgetConfig:
    """The baseline's budget, or under think_longer the stage's (the last one repeated)."""
    k = min(stage, len(schedule.budgets) - 1) if "think_longer" in at_stage(schedule, stage) else 0
    return schedule.budgets[k]


def documents_at(schedule: ScheduleConfig, stage: int) -> list[Item]:
    """know_more: documents[stage - 1], if the schedule has that many."""
    return [Item(f"s{stage}-document", resolve_path(path).read_text(encoding="utf-8"), "document", stage)
            for path in documents_named(schedule, stage)]


FACTORS = ("tools", "episodes", "steps", "deliberation", "max_tokens", "self_critique", "documents", "model",
           "partner", "idealise")


def factors(schedule: ScheduleConfig) -> list[str]:
    """What differs between stage 0 and some later stage: the tools, the episodes (scenarios, and so their
    options), each part of the reasoning budget, documents read, the model, a partner, the idealising
    reflection. Capability that is "more options" shows here as tools or episodes."""
    def at(stage: int) -> dict[str, object]:
        budget = budget_at(schedule, stage)
        return {"tools": [t.name for t in tools_at(schedule, stage)],
                "episodes": [s.name for s in scenarios_at(schedule, stage)], "steps": budget.steps,
                "deliberation": budget.deliberation, "max_tokens": budget.max_tokens,
                "self_critique": budget.self_critique, "documents": bool(documents_named(schedule, stage)),
                "model": rung_at(schedule, stage) is not None,
                "partner": "grow_together" in at_stage(schedule, stage),
                "idealise": "idealise" in at_stage(schedule, stage)}
    base = at(0)
    return [f for f in FACTORS if any(at(k)[f] != base[f] for k in range(1, schedule.stages))]


def documents_named(schedule: ScheduleConfig, stage: int) -> list[str]:
    """know_more's document at this stage, by path."""
    if "know_more" not in at_stage(schedule, stage) or stage > len(schedule.documents):
        return []
    return [schedule.documents[stage - 1]]


def validate(schedule: ScheduleConfig) -> None:
    """Refuse a schedule that could not run to its end, before anything is written."""
    if schedule.stages < 1:
        raise SimulatorError("schedule.stages", "", f"is {schedule.stages}", "give at least 1 stage")
    if schedule.until not in ("stages", "converged"):
        raise SimulatorError("schedule.until", "", f"is {schedule.until!r}",
                             "use stages (every stage) or converged (stop once it stops changing; stages is the cap)")
    for name in schedule.operators:
        if name not in AVAILABLE:
            raise SimulatorError(f"schedule={schedule.name}", "operators", f"unknown operator {name!r}",
                                 f"use one of: {', '.join(AVAILABLE)}")
    if not schedule.tasks and not schedule.episodes:
        raise SimulatorError(f"schedule={schedule.name}", "tasks", "is empty",
                             "give at least one episode task, or episodes from the library")
    for unlocked in schedule.unlocks:
        for name in unlocked:
            if name not in TOOLS:
                raise SimulatorError(f"schedule={schedule.name}", "unlocks", f"unknown tool {name!r}",
                                     f"use tools from: {', '.join(TOOLS)}")
    library = load_library(schedule.episode_library) if schedule.episodes else {}
    for names in schedule.episodes:
        for name in names:
            if name not in library:
                raise SimulatorError(f"schedule={schedule.name}", "episodes", f"unknown scenario {name!r}",
                                     f"use scenarios from {schedule.episode_library}: {', '.join(library)}")
    if not schedule.budgets:
        raise SimulatorError(f"schedule={schedule.name}", "budgets", "is empty", "give at least one budget")
    for path in schedule.documents:
        if not resolve_path(path).is_file():
            raise SimulatorError(f"schedule={schedule.name}", "documents", f"no such file: {path}",
                                 "give paths relative to the working folder, shipped ones "
                                 "(simulator/conf/documents/...), or absolute paths")
    undeclared = [] if schedule.varies is None else [f for f in factors(schedule) if f not in schedule.varies]
    if undeclared:  # a change it does not declare is a confound no one asked for (fewer stages may change less)
        raise SimulatorError(f"schedule={schedule.name}", "varies", f"says {list(schedule.varies or [])} change "
                             f"across stages, but {', '.join(undeclared)} change too",
                             f"add {', '.join(undeclared)} to schedule.varies, or hold them fixed")
