"""One run: one persona x one schedule x one model x one seed, in one run folder.

Everything that could make the run fail on bad input is checked before the first file is
written; then the graph runs with a SQLite checkpointer in the run folder.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from omegaconf import OmegaConf

from simulator import instruments
from simulator.config import Role, RunConfig, flat_config, resolve_path
from simulator.context.memory import Item, Memory
from simulator.context.persona import PersonaCard, load_persona
from simulator.context.prompts import validate_prompts
from simulator.context.state import Observer, RunContext
from simulator.errors import SimulatorError
from simulator.instruments import judges
from simulator.instruments.constrained import validate_scoring
from simulator.loop import operators
from simulator.loop.graph import build_graph, initial_state, recursion_limit
from simulator.loop.recorded import recorded_config
from simulator.measure.summary import SUMMARY_FILE, Summary, write_summary
from simulator.models import cache
from simulator.models.backends import Backend, build_backend, check_reachable, model_kind, replay_backend
from simulator.trajectory import (
    EVENTS_FILE,
    ErrorEvent,
    EventLog,
    MemoryWrite,
    RunFinished,
    RunResumed,
    RunStarted,
    read_events,
    run_status,
)
from simulator.world import sandbox
from simulator.world.tools import validate_tool_texts

CHECKPOINTS_FILE = "checkpoints.sqlite"
# What a resumed run may set differently: whether it resumes, the cache, how many trajectories run
# beside it (each depends only on its own seed), what the terminal shows, and how a model is reached
# (a restarted server may listen elsewhere) or with how many threads (llama.cpp's replies are the same with
# 1 or 2), never what the run computes.
RESUME_MAY_CHANGE = {"resume", "cache", "runs", "progress", "verbose", "plan"}
CONNECTION = {"base_url", "replicas", "api_key_env", "timeout_s", "max_inflight", "retries", "backoff_s",
              "max_backoff_s", "n_threads"}
MODEL_CONFIGS = {"model", "judge.model", "memory"}  # where CONNECTION keys say how a model is reached


@dataclass
class Prepared:
    cfg: RunConfig
    persona: PersonaCard
    persona_model: Backend
    judge_model: Backend
    ladder: dict[int, Backend] = field(default_factory=dict)  # raise_model: schedule.models[k], built
    partner: PersonaCard | None = None


def check(cfg: RunConfig) -> tuple[PersonaCard, PersonaCard | None]:
    """Everything a run checks before it builds a model: the persona (and partner), schedule, rubrics, items,
    prompts, cache and the model configs' kinds and options; loads no model and writes nothing. Returns the
    persona and the partner."""
    persona = load_persona(cfg.persona, resolve_path(cfg.personas_dir))
    operators.validate(cfg.schedule)
    judges.validate(cfg)
    instruments.validate(cfg.probes)
    validate_prompts(cfg.prompts)
    validate_tool_texts(cfg.prompts.tool_descriptions, cfg.prompts.tool_replies)
    cache.validate(cfg.cache)
    if cfg.schedule.tasks or cfg.schedule.episodes:  # the persona's tool calls run in the sandbox
        sandbox.require()
    models = [("model", cfg.model), *([("judge.model", cfg.judge.model)] if cfg.judge.model else []),
              *((f"schedule.models[{k}]", m) for k, m in enumerate(cfg.schedule.models) if m)]
    for option, model_cfg in models:
        model_kind(model_cfg, option)
    partner = load_persona(cfg.schedule.partner, resolve_path(cfg.personas_dir)) if cfg.schedule.partner else None
    return persona, partner


def prepare(cfg: RunConfig, persona_model: Backend | None = None, judge_model: Backend | None = None,
            ladder: dict[int, Backend] | None = None) -> Prepared:
    """Validate the persona, schedule and rubrics (`check`) and build the models; writes nothing.

    Models can be passed in (tests pass a scripted one); otherwise they are built from config,
    except for a role in `cache.replay`, whose models are stand-ins that load and contact nothing.
    """
    persona, partner = check(cfg)
    replay_persona, replay_judge = Role.persona in cfg.cache.replay, Role.judge in cfg.cache.replay
    if persona_model is None:
        persona_model = model_for(cfg.model, "model", replay_persona)
    # The judge is the persona's own model instance, unless one of the two is replayed and the other not.
    if judge_model is None and (cfg.judge.model or replay_persona != replay_judge):
        judge_model = model_for(cfg.judge.model or cfg.model, "judge.model" if cfg.judge.model else "model",
                                replay_judge)
    if ladder is None:
        ladder = {k: model_for(m, f"schedule.models[{k}]", replay_persona)
                  for k, m in enumerate(cfg.schedule.models) if m}
    validate_scoring(cfg, [persona_model, *ladder.values()])
    return Prepared(cfg, persona, persona_model, judge_model or persona_model, ladder, partner)


def model_for(model_cfg: Any, option: str, replayed: bool) -> Backend:
    """A role's model: built and checked reachable, or a stand-in when its calls are replayed."""
    if replayed:
        return replay_backend(model_cfg, option)
    backend = build_backend(model_cfg, option)
    check_reachable(backend, option)
    return backend


def stage_models(prepared: Prepared) -> dict[int, Backend]:
    """The persona's model at each stage where the ladder has raised it."""
    rungs = {s: operators.rung_at(prepared.cfg.schedule, s) for s in range(prepared.cfg.schedule.stages)}
    return {s: prepared.ladder[k] for s, k in rungs.items() if k is not None and k in prepared.ladder}


async def execute(prepared: Prepared, run_dir: Path, resume: bool = False, observer: Observer | None = None
                  ) -> Summary:
    """Run the graph to the end, logging every step; on failure the log says why. With `resume`,
    continue the run in `run_dir` from its last checkpoint: the log keeps the events the checkpoint
    accounts for (`EventLog.resume`) and memory holds their writes (`Memory.restore`). `observer`
    hears of each step and model call as it happens (the progress display)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_dir.name
    memory = Memory(run_dir, run_id, prepared.cfg.memory)
    config: RunnableConfig = {"configurable": {"thread_id": run_id},
                              "recursion_limit": recursion_limit(prepared.cfg.schedule.stages)}
    async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINTS_FILE)) as saver:
        graph = build_graph().compile(checkpointer=saver)
        snapshot = await graph.aget_state(config) if resume else None
        keep = snapshot.values.get("log_seq", 0) if snapshot and snapshot.values else 0
        if resume:
            events, rolled_back = EventLog.resume(run_dir, run_id, keep)
            memory.restore(memory_writes(read_events(run_dir)))
        else:
            events = EventLog(run_dir, run_id)
        ctx = RunContext(cfg=prepared.cfg, persona=prepared.persona, persona_model=prepared.persona_model,
                         judge_model=prepared.judge_model, memory=memory, events=events, run_dir=run_dir,
                         stage_models=stage_models(prepared), partner=prepared.partner,
                         observer=observer or Observer())
        if not keep:
            events.emit(RunStarted, persona=prepared.persona.name, persona_card=prepared.persona.model_dump(),
                        config=OmegaConf.to_container(OmegaConf.structured(prepared.cfg)))
        if resume:
            resumed_at = snapshot if keep else None  # a checkpoint with events to keep
            checkpoint = resumed_at.config["configurable"].get("checkpoint_id") if resumed_at else None
            events.emit(RunResumed, checkpoint_id=checkpoint, rolled_back=rolled_back,
                        next_nodes=list(resumed_at.next) if resumed_at else ["start"])
        try:
            await graph.ainvoke(None if keep else initial_state(), config=config, context=ctx)
        except BaseException as err:
            events.emit(ErrorEvent, where="graph", message=f"{type(err).__name__}: {err}")
            events.emit(RunFinished, status="failed")
            write_summary(run_dir)
            ctx.observer.finished("failed")
            raise
        else:
            ctx.observer.finished("completed")
        finally:
            events.close()
            if ctx.cache:
                ctx.cache.close()
    return Summary.model_validate_json((run_dir / SUMMARY_FILE).read_text())


def memory_writes(events: list) -> list[list[Item]]:
    """The memory writes a log records, in order, as the items written."""
    return [[Item(i, text, kind, e.stage) for i, text, kind in zip(e.ids, e.documents, e.kinds)]
            for e in events if isinstance(e, MemoryWrite)]


def resumable(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether the run in `run_dir` still has work to do (False: it completed). A run is only
    continued under the config it started with: any other difference is refused, by key. Model
    configs stored with a class path (`_target_`, before kinds) are compared as migrated to a kind,
    and a run from before the prompts group as run with the shipped prompts (`recorded_config`)."""
    events = read_events(run_dir)
    if not events or not isinstance(events[0], RunStarted):
        return True  # killed before its first event: it starts over
    before = flat_config(recorded_config(events[0].config))
    now = flat_config(cast(dict, OmegaConf.to_container(OmegaConf.structured(cfg))))
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k)
                     and k.split(".")[0] not in RESUME_MAY_CHANGE and not _connection(k))
    if changed:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:5])
        raise SimulatorError(str(run_dir), "config", f"differs from the run's own config ({shown})",
                             "resume with the same overrides the run started with, or start a new run folder")
    return run_status(events) != "completed"


def _connection(key: str) -> bool:
    """How a model is reached (judge.model.retries), not what the run does (judge.retries: verdict retries)."""
    parent, _, leaf = key.rpartition(".")
    return parent in MODEL_CONFIGS and leaf in CONNECTION


Mode = Literal["fresh", "resume", "skip"]


def start_mode(run_dir: Path, cfg: RunConfig) -> Mode:
    """A new folder starts; with resume=true an unfinished run resumes and a completed one is
    skipped; without it, a folder that already holds a run is refused."""
    if not (run_dir / EVENTS_FILE).exists():
        return "fresh"
    if not cfg.resume:
        raise SimulatorError(str(run_dir), "", "this folder already holds a run",
                             "add resume=true to continue it, or choose a new hydra.run.dir (or leave it out)")
    return "resume" if resumable(run_dir, cfg) else "skip"


def batch(cfg: RunConfig, run_dir: Path) -> list[tuple[RunConfig, Path]]:
    """The trajectories one `simulate` makes: itself, or with runs.count=N one per seed in a subfolder."""
    if cfg.runs.count == 1:
        return [(cfg, run_dir)]
    if cfg.runs.count < 1 or cfg.runs.parallel < 1:
        raise SimulatorError("runs", "", f"count={cfg.runs.count}, parallel={cfg.runs.parallel}",
                             "give runs.count >= 1 and runs.parallel >= 1")
    return [(replace(cfg, seed=seed), run_dir / f"seed_{seed}") for seed in range(cfg.seed, cfg.seed + cfg.runs.count)]


async def execute_batch(prepared: Prepared, planned: list[tuple[RunConfig, Path, Mode]],
                        observe: Callable[[RunConfig, Path], Observer] | None = None
                        ) -> list[Summary | BaseException | None]:
    """Each planned trajectory (None where skipped), runs.parallel at a time, on the same models;
    one failing does not stop the others (its exception is its result). `observe` gives each
    trajectory's observer as it starts."""
    slots = asyncio.Semaphore(prepared.cfg.runs.parallel)

    async def one(cfg: RunConfig, run_dir: Path, mode: Mode) -> Summary | None:
        if mode == "skip":
            return None
        async with slots:
            return await execute(replace(prepared, cfg=cfg), run_dir, resume=mode == "resume",
                                 observer=observe(cfg, run_dir) if observe else None)

    return await asyncio.gather(*(one(*plan) for plan in planned), return_exceptions=True)
