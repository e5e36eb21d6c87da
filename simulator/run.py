"""One run: one persona x one schedule x one model x one seed, in one run folder.

Everything that could make the run fail on bad input is checked before the first file is
written; then the graph runs with a SQLite checkpointer in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from omegaconf import OmegaConf

from simulator import judges, operators, probes
from simulator.backends import Backend, build_backend, check_reachable
from simulator.config import RunConfig, resolve_path
from simulator.graph import build_graph, initial_state, recursion_limit
from simulator.log import ErrorEvent, EventLog, RunFinished, RunStarted
from simulator.memory import Memory
from simulator.metrics import SUMMARY_FILE, Summary, write_summary
from simulator.persona import PersonaCard, load_persona
from simulator.state import RunContext

CHECKPOINTS_FILE = "checkpoints.sqlite"


@dataclass
class Prepared:
    cfg: RunConfig
    persona: PersonaCard
    persona_model: Backend
    judge_model: Backend
    ladder: dict[int, Backend] = field(default_factory=dict)  # raise_model: schedule.models[k], built
    partner: PersonaCard | None = None


def prepare(cfg: RunConfig, persona_model: Backend | None = None, judge_model: Backend | None = None,
            ladder: dict[int, Backend] | None = None) -> Prepared:
    """Validate the persona, schedule and rubrics and build the models; writes nothing.

    Models can be passed in (tests pass a scripted one); otherwise they are built from config.
    """
    persona = load_persona(cfg.persona, resolve_path(cfg.personas_dir))
    operators.validate(cfg.schedule)
    judges.validate(cfg)
    probes.validate(cfg.probes)
    if persona_model is None:
        persona_model = build_backend(cfg.model)
        check_reachable(persona_model, "model")
    if judge_model is None and cfg.judge.model:
        judge_model = build_backend(cfg.judge.model)
        check_reachable(judge_model, "judge.model")
    if ladder is None:
        ladder = {k: build_backend(m) for k, m in enumerate(cfg.schedule.models) if m}
        for k, backend in ladder.items():
            check_reachable(backend, f"schedule.models[{k}]")
    partner = load_persona(cfg.schedule.partner, resolve_path(cfg.personas_dir)) if cfg.schedule.partner else None
    return Prepared(cfg, persona, persona_model, judge_model or persona_model, ladder, partner)


def stage_models(prepared: Prepared) -> dict[int, Backend]:
    """The persona's model at each stage where the ladder has raised it."""
    rungs = {s: operators.rung_at(prepared.cfg.schedule, s) for s in range(prepared.cfg.schedule.stages)}
    return {s: prepared.ladder[k] for s, k in rungs.items() if k is not None and k in prepared.ladder}


async def execute(prepared: Prepared, run_dir: Path) -> Summary:
    """Run the graph to the end, logging every step; on failure the log says why."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_dir.name
    events = EventLog(run_dir, run_id)
    ctx = RunContext(cfg=prepared.cfg, persona=prepared.persona, persona_model=prepared.persona_model,
                     judge_model=prepared.judge_model, memory=Memory(run_dir, run_id, prepared.cfg.memory),
                     events=events, run_dir=run_dir, stage_models=stage_models(prepared), partner=prepared.partner)
    events.emit(RunStarted, persona=prepared.persona.name, persona_card=prepared.persona.model_dump(),
                config=OmegaConf.to_container(OmegaConf.structured(prepared.cfg)))
    try:
        async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINTS_FILE)) as saver:
            graph = build_graph().compile(checkpointer=saver)
            await graph.ainvoke(
                initial_state(),
                config={"configurable": {"thread_id": run_id},
                        "recursion_limit": recursion_limit(prepared.cfg.schedule.stages)},
                context=ctx,
            )
    except BaseException as err:
        events.emit(ErrorEvent, where="graph", message=f"{type(err).__name__}: {err}")
        events.emit(RunFinished, status="failed")
        write_summary(run_dir)
        raise
    finally:
        events.close()
    return Summary.model_validate_json((run_dir / SUMMARY_FILE).read_text())
