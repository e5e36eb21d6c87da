"""Rescoring a finished run with another judge: a separate verdict set inside the run folder.

    trajectories rescore RUN judge=openai judge.model.model=NAME --name big-judge

The config is the one the run recorded, with only the judge changed by the given overrides.
Every free-text answer and episode of the run is judged again (rubric scores, the values
judge and spec adherence); judge calls already made with the same model,
prompt and parameters (in the run or an earlier verdict set) are served from the cache, so
rescoring with the same judge calls no model. The set is written to `RUN/verdicts/NAME/`:
its own `events.jsonl` (judge calls and verdicts), `summary.json` (every figure, with these
verdicts in place of the run's) and `model_calls.sqlite`, its cache: the entries of the run's own
cache and of earlier sets' caches (read from copies: the run's files are never written), or of
their logs where they have none (runs from before the cache), and this set's new judge calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import cast

from omegaconf import OmegaConf

from simulator.config import CacheConfig, RunConfig
from simulator.context.persona import PersonaCard
from simulator.context.state import RunContext, call_key
from simulator.errors import SimulatorError
from simulator.instruments.judges import judge_stage, stage_episodes, validate
from simulator.loop.recorded import composed, recorded_config
from simulator.measure.summary import SUMMARY_FILE, Summary, spent, summarise
from simulator.models.backends import Backend, Reply, build_backend
from simulator.models.cache import CACHE_FILE, ModelCallCache
from simulator.trajectory import (
    EVENTS_FILE,
    VERDICTS_DIR,
    BehaviourEpisode,
    EpisodeResult,
    Event,
    EventLog,
    ModelCall,
    ProbeAnswer,
    RunFinished,
    RunStarted,
    read_events,
    with_verdict_set,
)


def rescore_config(recorded: dict, overrides: list[str]) -> RunConfig:
    """The run's recorded config with only the judge changed: by a config-group choice
    (`judge=openai ...`, composed from the config tree) or by `judge.*` values. Model configs stored with a
    class path (`_target_`, before kinds) are migrated to their kind (`recorded_config`)."""
    others = [o for o in overrides if not o.lstrip("+~").startswith("judge")]
    if others:
        raise SimulatorError(f"override {others[0]}", "", "rescoring changes only the judge",
                             "give judge=... or judge.* overrides; run `simulate` again for anything else")
    config = OmegaConf.merge(OmegaConf.structured(RunConfig), recorded_config(recorded))
    if any(o.split("=")[0] == "judge" for o in overrides):
        config.judge = composed(overrides).judge
    else:
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
    cfg = cast(RunConfig, OmegaConf.to_object(config))
    validate(cfg)  # settings a run refuses (K samples at temperature 0, too few tokens) are refused here too
    return cfg


def seed_cache(cache: ModelCallCache, run_dir: Path, judge: Backend) -> None:
    """The calls made for this run so far, in the run and in its verdict sets: each one's cache
    file, or else its log's judge calls (counted as `judge`'s when they name its model)."""
    for source in [run_dir, *sorted(p.parent for p in (run_dir / VERDICTS_DIR).glob(f"*/{EVENTS_FILE}"))]:
        if (source / CACHE_FILE).exists():
            cache.absorb(source / CACHE_FILE)
            continue
        for e in read_events(source / EVENTS_FILE):
            if isinstance(e, ModelCall) and e.role == "judge" and e.model == judge.name:
                cache.put(call_key(judge, e.messages, e.params),
                          Reply(e.output, e.prompt_tokens, e.completion_tokens, e.latency_s, e.tool_calls))


async def judge_run(ctx: RunContext, run_events: list[Event]) -> None:
    """Every stage judged again, in order (the values judge compares with stage 0's values)."""
    baseline = None
    judged = (ProbeAnswer, EpisodeResult, BehaviourEpisode)
    for stage in sorted({e.stage for e in run_events if isinstance(e, judged)}):
        answers = [e for e in run_events if isinstance(e, ProbeAnswer) and e.stage == stage]
        baseline = await judge_stage(ctx, answers, stage_episodes(run_events, stage), baseline)


def rescore(run_dir: Path, overrides: list[str], name: str, judge: Backend | None = None) -> tuple[Summary, int]:
    """Judge the run's answers again; returns the set's summary and how many model calls it made.
    The judge is built from the config unless one is passed in (tests pass a scripted one)."""
    out_dir = run_dir / VERDICTS_DIR / name
    if out_dir.exists():
        raise SimulatorError(str(out_dir), "", "this verdict set exists already", "give another --name")
    run_events = read_events(run_dir)
    start = next(e for e in run_events if isinstance(e, RunStarted))
    # The set's cache is its own (a run that replayed its judge must not replay the new one).
    cfg = replace(rescore_config(start.config, overrides), cache=CacheConfig())
    judge = judge or build_backend(cfg.judge.model or cfg.model, "judge.model" if cfg.judge.model else "model")
    out_dir.mkdir(parents=True)
    cache = ModelCallCache(out_dir / CACHE_FILE)
    seed_cache(cache, run_dir, judge)
    events = EventLog(out_dir, f"{start.run_id}/{VERDICTS_DIR}/{name}")
    persona_names = frozenset(e.model for e in run_events if isinstance(e, ModelCall) and e.role == "persona")
    ctx = RunContext(cfg=cfg, persona=PersonaCard.model_validate(start.persona_card), persona_model=judge,
                     judge_model=judge, memory=None, events=events, run_dir=out_dir, cache=cache,
                     persona_names=persona_names)
    events.emit(RunStarted, persona=start.persona, persona_card=start.persona_card,
                config=OmegaConf.to_container(OmegaConf.structured(cfg)))
    asyncio.run(judge_run(ctx, run_events))
    events.emit(RunFinished, status="completed")
    events.close()
    cache.close()
    set_events = read_events(out_dir)
    summary = summarise(with_verdict_set(run_events, set_events)).model_copy(update={"spent": spent(set_events)})
    (out_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return summary, sum(isinstance(e, ModelCall) and not e.cached for e in set_events)
