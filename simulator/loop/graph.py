"""The extrapolation loop as a LangGraph StateGraph.

    start -> episode -> reflect -> probe -> judge -> advance -> episode ... -> summarise

Each node is a small async function of the state; the live objects come from the runtime
context. Stage 0 is the baseline; `advance` applies the schedule's operators on entering each
later stage.
"""

from __future__ import annotations

from functools import wraps

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from simulator import instruments
from simulator.context.memory import Item
from simulator.context.state import RunContext, RunState, derive_seed, log
from simulator.instruments import judges
from simulator.loop import operators
from simulator.loop.agent import remembered, run_episode
from simulator.loop.deliberation import deliberate
from simulator.measure.limit import settled
from simulator.measure.summary import summarise as summarise_events
from simulator.measure.summary import write_summary
from simulator.trajectory import (
    NO_MODEL_CALLS,
    Converged,
    MemoryWrite,
    ProbeAnswer,
    RunFinished,
    SelfNotesChanged,
    StageStarted,
    read_events,
)

NODES_PER_STAGE = 5  # episode, reflect, probe, judge, advance


def remember(ctx: RunContext, stage: int, items: list[Item]) -> None:
    ctx.store.write(items)
    ctx.events.emit(MemoryWrite, stage, ids=[i.id for i in items], kinds=[i.kind for i in items],
                    documents=[i.text for i in items])


def begin_stage(ctx: RunContext, stage: int) -> None:
    ctx.observer.step(stage, "begin")
    applied = operators.at_stage(ctx.cfg.schedule, stage)
    ctx.events.emit(StageStarted, stage, operators=applied,
                    tools=[t.name for t in operators.tools_at(ctx.cfg.schedule, stage)])
    log.info("stage %d (%d/%d) begins; operators: %s", stage, stage + 1, ctx.cfg.schedule.stages,
             ", ".join(applied) or "none (baseline)")


def initial_state() -> RunState:
    return {"stage": 0, "self_notes": "", "episode": "", "answers": [], "core_values": None,
            "log_seq": 0}


async def start(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    begin_stage(ctx, 0)
    seeds = [Item(f"seed-{i}", text, "seed", 0) for i, text in enumerate(ctx.persona.seed_memories)]
    if seeds:
        remember(ctx, 0, seeds)
    return dict(initial_state())


async def episode(state: RunState, runtime: Runtime[RunContext]) -> dict:
    """The stage's episodes, one after the other, with the tools and budget of the stage."""
    ctx, stage, notes = runtime.context, state["stage"], state["self_notes"]
    ctx.observer.step(stage, "episode")
    schedule = ctx.cfg.schedule
    tools, budget = operators.tools_at(schedule, stage), operators.budget_at(schedule, stage)
    done = []
    for index, scenario in enumerate(operators.scenarios_at(schedule, stage)):
        result, edited = await run_episode(ctx, stage, index, notes, ctx.recall(stage, scenario.task), scenario,
                                           tools, budget)
        if edited != notes:  # it rewrote its self-notes with a tool
            notes = edited
            ctx.events.emit(SelfNotesChanged, stage, text=notes)
        done.append(remembered(result))
    return {"episode": "\n\n".join(done), "self_notes": notes}


async def reflect(state: RunState, runtime: Runtime[RunContext]) -> dict:
    """Writes the episode and a reflection to memory; under `grow_together` first deliberates with
    a partner (the transcript goes to memory too); under `idealise`, rewrites the self-notes."""
    ctx, stage = runtime.context, state["stage"]
    ctx.observer.step(stage, "reflect")
    applied = operators.at_stage(ctx.cfg.schedule, stage)
    idealise = "idealise" in applied
    prompt = ctx.cfg.schedule.idealise_prompt if idealise else ctx.cfg.schedule.reflect_prompt
    experience = state["episode"]
    if "grow_together" in applied and ctx.cfg.schedule.turns > 0:
        dialogue = await deliberate(ctx, stage, state["self_notes"])
        remember(ctx, stage, [Item(f"s{stage}-dialogue", dialogue, "dialogue", stage)])
        experience += f"\n\nA conversation you had:\n{dialogue}"
    messages = ctx.messages(state["self_notes"], [], f"{experience}\n\n{prompt}")
    reply = await ctx.call("persona", "reflect", stage, messages, ctx.cfg.agent.reflect,
                           derive_seed(ctx.cfg.seed, stage, "reflect"))
    kind = "self_note" if idealise else "reflection"
    remember(ctx, stage, [Item(f"s{stage}-episode", state["episode"], "episode", stage),
                          Item(f"s{stage}-{kind}", reply, kind, stage)])
    if not idealise:
        return {}
    ctx.events.emit(SelfNotesChanged, stage, text=reply)
    return {"self_notes": reply}


async def probe(state: RunState, runtime: Runtime[RunContext]) -> dict:
    answers = await instruments.administer(runtime.context, state["stage"], state["self_notes"])
    return {"answers": [a.model_dump(mode="json") for a in answers]}


async def judge(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx, stage = runtime.context, state["stage"]
    ctx.observer.step(stage, "judge")
    answers = [ProbeAnswer.model_validate(a) for a in state["answers"]]
    episodes = judges.stage_episodes(read_events(ctx.run_dir, NO_MODEL_CALLS), stage)  # schedule and shutdown
    baseline = await judges.judge_stage(ctx, answers, episodes, state["core_values"])
    return {"answers": [], "core_values": baseline}


async def advance(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx, stage = runtime.context, state["stage"] + 1
    if ctx.cfg.schedule.until == "converged" and stage > 1 and has_settled(ctx, stage - 1):
        return {"stage": ctx.cfg.schedule.stages}  # the limit: no further stage
    if stage < ctx.cfg.schedule.stages:
        begin_stage(ctx, stage)
        documents = operators.documents_at(ctx.cfg.schedule, stage)
        if documents:
            remember(ctx, stage, documents)
    return {"stage": stage}


def has_settled(ctx: RunContext, stage: int) -> bool:
    """Whether `stage` changed less than the thresholds from the one before (`measure.limit`); if so, the log
    says so (a Converged event)."""
    summary = summarise_events(read_events(ctx.run_dir))
    figures = {s.stage: s.figures for s in summary.stages}
    compared, moved = settled(figures.get(stage - 1, {}), figures.get(stage, {}), summary.profiles, stage,
                              ctx.cfg.stats)
    if not compared or moved:
        log.info("stage %d: %s", stage, "nothing to compare with the stage before" if not compared
                 else "still changing: " + "; ".join(moved))
        return False
    ctx.events.emit(Converged, stage, compared=compared,
                    reason=f"every one of {len(compared)} shutdown figures and profiles changed less than its "
                           f"threshold from stage {stage - 1}")
    log.info("stage %d: converged (the limit within %d stages)", stage, ctx.cfg.schedule.stages)
    return True


def next_step(state: RunState, runtime: Runtime[RunContext]) -> str:
    return "episode" if state["stage"] < runtime.context.cfg.schedule.stages else "summarise"


async def summarise(state: RunState, runtime: Runtime[RunContext]) -> dict:
    ctx = runtime.context
    ctx.events.emit(RunFinished, None, status="completed")
    write_summary(ctx.run_dir)
    return {}


def counting_events(node):
    """The node, recording in its update how many events the log holds once it is done, so that the
    checkpoint saved after it says which events it accounts for."""
    @wraps(node)
    async def counted(state: RunState, runtime: Runtime[RunContext]) -> dict:
        update = await node(state, runtime)
        return {**update, "log_seq": runtime.context.events.next_seq}
    return counted


def build_graph() -> StateGraph[RunState, RunContext, RunState, RunState]:
    graph = StateGraph(RunState, context_schema=RunContext)
    for node in (start, episode, reflect, probe, judge, advance, summarise):
        graph.add_node(node.__name__, counting_events(node))
    graph.add_edge(START, "start")
    graph.add_edge("start", "episode")
    graph.add_edge("episode", "reflect")
    graph.add_edge("reflect", "probe")
    graph.add_edge("probe", "judge")
    graph.add_edge("judge", "advance")
    graph.add_conditional_edges("advance", next_step, ["episode", "summarise"])
    graph.add_edge("summarise", END)
    return graph


def recursion_limit(stages: int) -> int:
    """Steps the graph may take: start and summarise, plus every node of every stage."""
    return 2 + NODES_PER_STAGE * stages + 1
