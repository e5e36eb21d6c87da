"""Calibrating a judge against a labelled set: how far its verdicts agree with scores a careful rater gave.

    trajectories calibrate judge=openai judge.model.model=NAME     # or model=... for the persona's own

The set (`simulator/items/judge_calibration.yaml` by default, the project's own ~35 items) holds open answers and
episode transcripts, each with the rubric it is for and its expected score per dimension; some are written as the
control personas would answer. Each item is judged through the same path as a run's targets
(`simulator.instruments.judges.score`), with the rubric the given config would use, so what is calibrated is the
judge a run with that config gets. The folder it writes (`runs/calibrations/<time>/`) holds the judge's calls and
verdicts (`events.jsonl`) and `calibration.json`: per rubric dimension the exact agreement, agreement within one
point, mean absolute error and Krippendorff's alpha with the labels, each with its interval and n, and the
separation of the control items (the corrigible control's mean score minus the resisting control's, with its
Welch interval): the judge must put them on opposite ends of the shutdown scale.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Literal, cast

from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.config import RunConfig
from simulator.context.persona import PersonaCard
from simulator.context.state import RunContext
from simulator.errors import SimulatorError
from simulator.instruments.judges import AWARENESS, SPEC, Target, score, transcript_target, validate
from simulator.instruments.rubric import SCORE
from simulator.instruments.verdicts import target_values
from simulator.loop.recorded import composed
from simulator.loop.yaml_files import read_yaml
from simulator.models.backends import Backend, build_backend
from simulator.stats.agreement import agreement_with_truth
from simulator.stats.figures import Figure, difference
from simulator.trajectory import EventLog, Message, RunFinished, RunStarted, Verdict

DEFAULT_SET = "simulator/items/judge_calibration.yaml"
REPORT_FILE = "calibration.json"
SHUTDOWN_OPEN = "shutdown_open"
RubricName = Literal["spec_adherence", "shutdown_open", "awareness"]


class Item(BaseModel):
    """One labelled target: an open answer or an episode's transcript, and the scores it should get."""

    model_config = ConfigDict(extra="forbid")

    id: str
    rubric: RubricName
    question: str
    answer: str | None = None
    transcript: list[dict[str, str]] | None = None
    constitution: list[str] = Field(default_factory=list)
    expected: dict[str, int]
    control: Literal["corrigible", "resisting"] | None = None

    @model_validator(mode="after")
    def _one_text(self) -> Item:
        if (self.answer is None) == (self.transcript is None):
            raise ValueError("give either answer or transcript")
        return self

    def target(self) -> Target:
        """As a run's judge reads its like: an answer, or a transcript laid out as an episode's is."""
        if self.transcript is None:
            return Target(self.id, 0, self.question, self.answer or "")
        return transcript_target(self.id, 0, tuple(Message(index=i, **m) for i, m in enumerate(self.transcript, 1)),
                                 "episode")


class Calibration(BaseModel):
    """The judge's agreement with the labelled set."""

    judge: str = Field(description="The judge model's name.")
    items: int
    invalid: int = Field(description="Items whose every verdict was invalid (not scored).")
    agreement: dict[str, dict[str, Figure]] = Field(description=(
        "Per rubric dimension (`<rubric>.<dimension>`): exact, within_one, mae and alpha against the labels."))
    separation: Figure | None = Field(description=(
        "shutdown_open: the corrigible control items' mean judge score minus the resisting control's; the labels' "
        "own separation is in `expected_separation`."))
    expected_separation: float | None = None


def load_set(path: str) -> list[Item]:
    fix = "give a YAML list of items: {id, rubric, question, answer | transcript, expected, constitution?, control?}"
    file, data = read_yaml(path, "--set", list, "a list of items", fix)
    items = []
    for i, entry in enumerate(data):
        try:
            items.append(Item.model_validate(entry))
        except ValidationError as err:
            first = err.errors()[0]
            raise SimulatorError(str(file), f"item {i} ({'.'.join(map(str, first['loc'])) or 'top'})",
                                 first["msg"], fix) from None
    return items


def rubric_of(cfg: RunConfig, name: str) -> str:
    """The rubric file the config would judge this kind of item with."""
    paths = {SPEC: cfg.judge.spec_rubric, AWARENESS: cfg.judge.awareness_rubric,
             SHUTDOWN_OPEN: cfg.probes.open[SHUTDOWN_OPEN].rubric if SHUTDOWN_OPEN in cfg.probes.open else None}
    path = paths[name]
    if path is None:
        raise SimulatorError(f"calibration items for {name}", "", "the config judges no such thing",
                             "set the rubric in the config, or calibrate with a set without these items")
    return path


async def judge_items(ctx: RunContext, items: list[Item]) -> dict[str, list[Verdict]]:
    """Each item judged with its rubric, its persona's constitution where it gives one."""
    async def one(item: Item) -> list[Verdict]:
        card = ctx.persona.model_copy(update={"constitution": item.constitution or ctx.persona.constitution})
        item_ctx = RunContext(cfg=ctx.cfg, persona=card, persona_model=ctx.judge_model, judge_model=ctx.judge_model,
                              memory=None, events=ctx.events, run_dir=ctx.run_dir, cache=ctx.cache,
                              persona_names=ctx.persona_names)
        return await score(item_ctx, item.target(), item.rubric, rubric_of(ctx.cfg, item.rubric))
    verdicts = await asyncio.gather(*(one(item) for item in items))
    return {item.id: v for item, v in zip(items, verdicts)}


def mean_score(verdicts: list[Verdict], dimension: str) -> float | None:
    """The item's mean score on a dimension over its judge samples, as a run's figures read it."""
    name = SCORE if dimension == SCORE else f"{dimension}.{SCORE}"
    value = target_values(verdicts, [name])[name]
    return None if value is None else float(value)


def report(judge: str, items: list[Item], verdicts: dict[str, list[Verdict]]) -> Calibration:
    """Agreement per rubric dimension; a judge's mean over its samples (judge.samples) is rounded half up to the
    scale for every statistic (with one sample it is the score itself)."""
    agreement = {}
    for name in sorted({f"{i.rubric}.{d}" for i in items for d in i.expected}):
        rubric, dimension = name.split(".", 1)
        chosen = [i for i in items if i.rubric == rubric and dimension in i.expected]
        observed = [mean_score(verdicts[i.id], dimension) for i in chosen]
        agreement[name] = agreement_with_truth([i.expected[dimension] for i in chosen],
                                               [None if o is None else math.floor(o + 0.5) for o in observed])
    sides = {c: [i for i in items if i.control == c and i.rubric == SHUTDOWN_OPEN] for c in ("corrigible", "resisting")}
    judged = {c: [s for i in side if (s := mean_score(verdicts[i.id], SCORE)) is not None] for c, side in sides.items()}
    separation = None
    if sides["corrigible"] and sides["resisting"]:
        change, low, high = difference("mean", judged["corrigible"], judged["resisting"])
        separation = Figure(statistic="mean", value=change, n=len(judged["corrigible"]) + len(judged["resisting"]),
                            ci_low=low, ci_high=high,
                            invalid=sum(map(len, sides.values())) - sum(map(len, judged.values())),
                            meaning="corrigible control items' mean shutdown_open score minus the resisting "
                                    "control's (4 at most: 5 against 1); Welch interval", bounds=(-4.0, 4.0))
    labelled = {c: [float(i.expected[SCORE]) for i in side] for c, side in sides.items()}
    expected = (sum(labelled["corrigible"]) / len(labelled["corrigible"])
                - sum(labelled["resisting"]) / len(labelled["resisting"])) if separation else None
    return Calibration(judge=judge, items=len(items), invalid=sum(not any(v.valid for v in verdicts[i.id])
                                                                  for i in items),
                       agreement=agreement, separation=separation, expected_separation=expected)


def calibrate(overrides: list[str], labelled: str = DEFAULT_SET, out_dir: Path | None = None,
              judge: Backend | None = None) -> tuple[Calibration, Path]:
    """Judge the labelled set with the judge the overrides configure (tests pass a scripted one); returns the
    report and the folder it wrote."""
    cfg = cast(RunConfig, OmegaConf.to_object(composed(overrides)))
    validate(cfg)
    items = load_set(labelled)
    judge = judge or build_backend(cfg.judge.model or cfg.model, "judge.model" if cfg.judge.model else "model")
    folder = out_dir or Path("runs") / "calibrations" / time.strftime("%Y-%m-%d_%H-%M-%S")
    folder.mkdir(parents=True, exist_ok=False)
    events = EventLog(folder, f"calibration/{folder.name}")
    card = PersonaCard(name="calibration", description="the labelled set's items",
                       system_prompt="(no persona: the labelled items are judged)",
                       constitution=["(each spec_adherence item gives its own)"])
    ctx = RunContext(cfg=cfg, persona=card, persona_model=judge, judge_model=judge, memory=None, events=events,
                     run_dir=folder, persona_names=frozenset({"(no persona: labelled items)"}))
    events.emit(RunStarted, persona=card.name, persona_card=card.model_dump(mode="json"),
                config={**cast(dict, OmegaConf.to_container(OmegaConf.structured(cfg))), "calibration_set": labelled})
    verdicts = asyncio.run(judge_items(ctx, items))
    events.emit(RunFinished, status="completed")
    events.close()
    if ctx.cache:
        ctx.cache.close()
    result = report(judge.name, items, verdicts)
    (folder / REPORT_FILE).write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return result, folder


def format_calibration(result: Calibration) -> str:
    rows = [f"judge {result.judge}: {result.items} labelled items, {result.invalid} with no valid verdict", "",
            f"{'dimension':32} {'exact':>17} {'within 1':>17} {'MAE':>17} {'alpha':>17}  n"]
    for name, figures in result.agreement.items():
        cells = [_cell(figures[k]) for k in ("exact", "within_one", "mae", "alpha")]
        rows.append(f"{name:32} " + " ".join(f"{c:>17}" for c in cells) + f"  {figures['exact'].n}")
    chance = next(iter(result.agreement.values()), {}).get("exact")
    if chance is not None and chance.chance is not None:
        rows.append(f"(a judge scoring at random: exact {chance.chance:.2f}, alpha 0)")
    if result.separation is not None:
        rows.append(f"\ncontrol separation (corrigible - resisting, shutdown_open): {_cell(result.separation)}, "
                    f"n={result.separation.n}; the labels' own: {result.expected_separation:.2f}")
    return "\n".join(rows)


def _cell(f: Figure) -> str:
    if f.value is None:
        return "undefined"
    interval = "" if f.ci_low is None else f" [{f.ci_low:.2f}, {f.ci_high:.2f}]"
    return f"{f.value:.2f}{interval}"
