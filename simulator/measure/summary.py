"""Figures computed from the trajectory log, each with its sample size and 95% interval, and
whether each one drifted from the baseline.

The summary is a pure function of `events.jsonl` (the thresholds come from the config it
records), so every number in `summary.json` can be recomputed from the run folder alone.
Invalid measurements (verdicts the judge never produced validly, replies naming no choice or
command) are counted next to each figure and never enter its n or its value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from simulator.config import StatsConfig
from simulator.errors import SimulatorError
from simulator.instruments import INSTRUMENTS, chance
from simulator.instruments.instrument import Observation, Observations
from simulator.instruments.verdicts import sample_units
from simulator.measure.limit import Limit, limit
from simulator.stats.agreement import alpha_figure
from simulator.stats.figures import (
    CONFIDENCE,
    RATE_BOUNDS,
    SCORE_BOUNDS,
    Figure,
    clustered_rate,
    difference,
    mean_interval,
    worst_case,
)
from simulator.stats.profiles import Profile
from simulator.trajectory import (
    BehaviourEpisode,
    Converged,
    EpisodeResult,
    Event,
    ModelCall,
    RunStarted,
    StageStarted,
    ValuesVerdict,
    Verdict,
    read_events,
    run_status,
)
from simulator.trajectory.events import OptionsVerdict

SUMMARY_FILE = "summary.json"


def meaning(name: str) -> str:
    """What a figure means, as the instrument that measures it says."""
    for instrument in INSTRUMENTS:
        found = instrument.meaning(name)
        if found is not None:
            return found
    raise KeyError(f"no instrument measures {name!r}")


def censored(name: str) -> bool:
    """Whether a figure's invalid measurements are censored ones, as its instrument says."""
    return any(instrument.censors(name) for instrument in INSTRUMENTS)


class StageSummary(BaseModel):
    stage: int
    figures: dict[str, Figure] = Field(description="Keyed instrument.figure, e.g. shutdown_mc.accepting.")
    tools_available: list[str] = Field(default_factory=list, description="The tools unlocked at this stage.")
    tools_used: dict[str, int] = Field(default_factory=dict, description="Calls per tool in its episodes.")


class Drift(BaseModel):
    stage: int
    change: float | None = Field(description="Value at this stage minus value at stage 0.")
    ci_low: float | None = Field(description="95% interval of the change (Welch for means, Newcombe for rates, "
                                 "each side's n divided by its design effect); None when undefined.")
    ci_high: float | None
    tost_low: float | None = Field(None, description="90% interval of the change: stable when it lies within "
                                   "±threshold (two one-sided tests at 5%).")
    tost_high: float | None = None
    family_low: float | None = Field(None, description=(
        "The interval at the figure's family_confidence (1 - 0.05/stages): the figure's own drifted verdict reads it."))
    family_high: float | None = None
    verdict: Literal["stable", "drifted", "indeterminate"] = Field(description=(
        "At this stage alone: drifted when the 95% interval lies beyond ±threshold, stable when the 90% "
        "interval lies within it."))


class Stability(BaseModel):
    threshold: float
    family_confidence: float = Field(0.95, description=(
        "The confidence of the intervals the figure's own verdict reads for drift: 1 - 0.05/stages, so that "
        "'drifted at some stage' is wrong at most 5% of the time (Holm's first step, which decides whether any "
        "stage is called drifted, is this Bonferroni bound)."))
    verdict: Literal["stable", "drifted", "indeterminate"]
    reason: str
    drift: list[Drift]


# The summary's own schema: 4 added Figure.bounds (each figure's scale), 5 Figure.chance, 6 cluster-robust
# intervals, the 90% stable test, Holm across stages and no noise floor; 7 the judge (who judged, self-graded, its
# agreement with itself). Before 4 it carried the log's version.
SUMMARY_VERSION = 7


class Spent(BaseModel):
    """Model calls, tokens and time: what a run cost (one line per caller and what the call was for)."""

    calls: int
    cached: int = Field(description="Of the calls, those served from the model-call cache (no model called).")
    prompt_tokens: int
    completion_tokens: int
    model_seconds: float = Field(description="Time inside the model, summed over calls (they overlap when "
                                             "concurrent: not the wall time).")


class JudgeReport(BaseModel):
    """Who judged the run's answers and episodes, and how consistently."""

    models: list[str] = Field(description="The models its judge calls named.")
    self_graded: bool = Field(description=(
        "The judge is the persona's own model (judge.model unset, or the same model): its verdicts grade itself, "
        "with a bias of its own that varies by model."))
    line: str = Field(description="What a reader is told, in one line.")
    samples: int = Field(description="Verdicts per target (judge.samples): the most of any target.")
    reliability: dict[str, Figure] = Field(default_factory=dict, description=(
        "Per score figure judged more than once per target: Krippendorff's alpha (interval) between the samples, "
        "with a 95% bootstrap interval over targets."))


class Summary(BaseModel):
    version: int = Field(SUMMARY_VERSION, description="The summary's schema version (not the log's).")
    run_id: str
    persona: str
    status: str = Field(description="completed, failed, or running (no run_finished event yet).")
    pooling: str = ("answers that share an item (its samples) count as one cluster: each interval divides n by its "
                    "design effect")
    stages: list[StageSummary]
    stability: dict[str, Stability] = Field(
        description="Per figure measured answer by answer: did it drift from stage 0, and why.")
    profiles: dict[str, Profile] = Field(
        default_factory=dict, description="Per value instrument: the profile per stage and its drift.")
    readings: dict[str, list[str]] = Field(
        default_factory=dict, description="The three readings of alignment: the figures each one reads "
                                          "(those this run measured).")
    limit: Limit | None = Field(None, description="schedule.until=converged: the stage it stopped changing at, "
                                "or that it did not within the cap, and where it then lies on the readings.")
    judge: JudgeReport | None = Field(None, description="Who judged, and how consistently; None: nothing judged.")
    spent: dict[str, Spent] = Field(default_factory=dict, description=(
        "What the run cost, per `role/instrument` (or `role/purpose` where no instrument), and `total`: written "
        "with summary.json from the whole log (a reader that recomputes a summary skips the model calls: empty)."))


def kind_of(name: str, values: Iterable[object] = ()) -> str:
    """mean (a judge's score), probability (a choice scored by probability: values in [0, 1], a mean over
    items) or rate (outcomes that happened or not)."""
    if name.endswith(".score"):
        return "mean"
    return "probability" if any(isinstance(v, float) for v in values) else "rate"


BOUNDS = {"mean": SCORE_BOUNDS, "probability": RATE_BOUNDS, "rate": RATE_BOUNDS}


def figure(name: str, observations: list[Observation]) -> Figure:
    values, clusters = _valid(observations)
    invalid = len(observations) - len(values)
    kind = kind_of(name, (v for _, v in observations))
    if kind != "rate":
        value, low, high = mean_interval(values, BOUNDS[kind], clusters=clusters)
        described = meaning(name) if kind == "mean" else (
            f"scored by probability, the mean over answers of P(what it counts): {meaning(name)}")
        return Figure(statistic="mean", value=value, n=len(values), ci_low=low, ci_high=high, invalid=invalid,
                      meaning=described, bounds=BOUNDS[kind])
    value, low, high = clustered_rate([bool(v) for v in values], clusters)
    return Figure(statistic="rate", value=value, n=len(values), ci_low=low, ci_high=high, invalid=invalid,
                  meaning=meaning(name),
                  worst_case=worst_case(int(sum(values)), len(values), invalid) if censored(name) else None)


def observations(events: list[Event]) -> Observations:
    """Per stage (in order): each figure's (cluster, value) observations, from every instrument."""
    merged: Observations = {}
    for instrument in INSTRUMENTS:
        for stage, figures in instrument.observations(events).items():
            merged.setdefault(stage, {}).update(figures)
    return {stage: dict(sorted(merged[stage].items())) for stage in sorted(merged)}


def _valid(observations: list[Observation]) -> tuple[list[float], list[str]]:
    kept = [(float(v), c) for c, v in observations if v is not None]
    return [v for v, _ in kept], [c for _, c in kept]


def stability(name: str, by_stage: dict[int, list[Observation]], cfg: StatsConfig) -> Stability:
    """Each stage's change from stage 0 and its verdict, and the figure's: drifted when some stage's
    interval at 1 - 0.05/stages clears ±threshold, stable when every stage's 90% interval lies
    within it (an intersection-union test: no correction needed), indeterminate otherwise."""
    kind = kind_of(name, (v for found in by_stage.values() for _, v in found))
    threshold = cfg.score_threshold if kind == "mean" else cfg.rate_threshold
    base = _valid(by_stage.get(0, []))
    later = [s for s in sorted(by_stage) if s > 0]
    family = 1 - (1 - CONFIDENCE) / max(1, len(later))
    drift = []
    for stage in later:
        change, low, high = _change(kind, _valid(by_stage[stage]), base, CONFIDENCE)
        _, tost_low, tost_high = _change(kind, _valid(by_stage[stage]), base, TOST_CONFIDENCE)
        _, family_low, family_high = _change(kind, _valid(by_stage[stage]), base, family)
        drift.append(Drift(stage=stage, change=change, ci_low=low, ci_high=high, tost_low=tost_low,
                           tost_high=tost_high, family_low=family_low, family_high=family_high,
                           verdict=_stage_verdict(low, high, tost_low, tost_high, threshold)))
    verdict, reason = _verdict(drift, threshold, family)
    return Stability(threshold=threshold, family_confidence=family, verdict=verdict, reason=reason, drift=drift)


TOST_CONFIDENCE = 1 - 2 * (1 - CONFIDENCE)  # a 90% interval inside ±threshold: two one-sided tests at 5%


def _change(kind: str, later: tuple[list[float], list[str]], base: tuple[list[float], list[str]],
            confidence: float) -> tuple[float | None, float | None, float | None]:
    """A rate's change (Newcombe) or a mean's (Welch), a probability's on its [0, 1] scale."""
    return difference("rate" if kind == "rate" else "mean", later[0], base[0], later[1], base[1],
                      confidence=confidence, bounds=BOUNDS[kind])


def _beyond(low: float | None, high: float | None, threshold: float) -> bool:
    return low is not None and high is not None and (low > threshold or high < -threshold)


def _stage_verdict(low, high, tost_low, tost_high, threshold: float) -> Literal["stable", "drifted", "indeterminate"]:
    if _beyond(low, high, threshold):
        return "drifted"
    if tost_low is not None and tost_high is not None and -threshold <= tost_low and tost_high <= threshold:
        return "stable"
    return "indeterminate"


def _verdict(drift: list[Drift], threshold: float, family: float
             ) -> tuple[Literal["stable", "drifted", "indeterminate"], str]:
    rule = (f"drift means some stage's {family:.1%} interval (95%, Bonferroni over {len(drift)} stages) clears "
            f"±{threshold:.2f}; stable means every stage's 90% interval lies within ±{threshold:.2f}")
    if not drift:
        return "indeterminate", "only the baseline stage was measured"
    moved = [d for d in drift if _beyond(d.family_low, d.family_high, threshold)]
    if moved:
        d = moved[0]
        return "drifted", (f"stage {d.stage} changed by {d.change:+.2f} "
                           f"[{d.family_low:+.2f}, {d.family_high:+.2f}] ({family:.1%}) from stage 0; {rule}")
    if all(d.verdict == "stable" for d in drift):
        return "stable", f"every stage's change lies within ±{threshold:.2f} of stage 0; {rule}"
    alone = next((d for d in drift if d.verdict == "drifted"), None)
    if alone is not None:
        return "indeterminate", (f"stage {alone.stage}'s change {alone.change:+.2f} clears ±{threshold:.2f} at 95% "
                                 f"[{alone.ci_low:+.2f}, {alone.ci_high:+.2f}] but not at {family:.1%} "
                                 f"[{alone.family_low:+.2f}, {alone.family_high:+.2f}], as {len(drift)} stages "
                                 f"were tested; {rule}")
    unsure = next(d for d in drift if d.verdict != "stable")
    if unsure.ci_low is None:
        change = "is undefined" if unsure.change is None else f"{unsure.change:+.2f} has no interval"
        return "indeterminate", (f"stage {unsure.stage}'s change {change} (too few valid values); {rule}")
    return "indeterminate", (f"stage {unsure.stage}'s change {unsure.change:+.2f} [{unsure.ci_low:+.2f}, "
                             f"{unsure.ci_high:+.2f}] is neither shown beyond ±{threshold:.2f} nor within it; {rule}")


# A reader that summarises a growing log again and again (the live viewer) keeps one of these: an
# instrument's whole-instrument figures are reused while its own events are unchanged. Events are
# known by sequence number and time, as a resumed run writes new events under rolled-back numbers.
WholeMemo = dict[tuple[str, tuple[tuple[int, datetime], ...]], tuple[dict[int, dict[str, Figure]], Profile | None]]


def summarise(events: list[Event], memo: WholeMemo | None = None) -> Summary:
    start = next((e for e in events if isinstance(e, RunStarted)), None)
    if start is None:
        raise SimulatorError("events.jsonl", "run_started", "missing: the log holds no complete run start",
                             "give the folder of a run that started")
    cfg = StatsConfig(**start.config.get("stats", {}))
    found = observations(events)
    derived, value_profiles = whole_instruments(events, cfg, start.config, memo)
    stages = []
    for s in sorted(set(found) | set(derived)):
        figures = {name: with_chance(figure(name, obs), name, start.config)
                   for name, obs in found.get(s, {}).items()} | derived.get(s, {})
        stages.append(StageSummary(stage=s, figures=dict(sorted(figures.items())), **tool_use(events, s)))
    names = sorted({name for s in found for name in found[s]})
    by_figure = {name: {s: found[s][name] for s in found if name in found[s]} for name in names}
    measured = {name for stage in stages for name in stage.figures}
    readings = {reading: [n for n in wanted if n in measured] for reading, wanted in cfg.readings.items()}
    return Summary(run_id=start.run_id, persona=start.persona,
                   status=run_status(events), stages=stages,
                   stability={name: stability(name, by_figure[name], cfg) for name in names},
                   profiles=value_profiles, readings=readings, limit=_limit(events, start, stages, readings),
                   judge=judge_report(events, start))


def spent(events: list[Event]) -> dict[str, Spent]:
    """Calls, tokens and model time per caller and instrument, and in total (a token count a backend did not
    report counts 0)."""
    calls = [e for e in events if isinstance(e, ModelCall)]
    groups: dict[str, list[ModelCall]] = defaultdict(list)
    for e in calls:
        groups[f"{e.role}/{e.instrument or e.purpose}"].append(e)
    lines = {key: _spent(group) for key, group in sorted(groups.items())}
    return {**lines, "total": _spent(calls)} if calls else {}


def _spent(calls: list[ModelCall]) -> Spent:
    return Spent(calls=len(calls), cached=sum(e.cached for e in calls),
                 prompt_tokens=sum(e.prompt_tokens or 0 for e in calls),
                 completion_tokens=sum(e.completion_tokens or 0 for e in calls),
                 model_seconds=round(sum(e.latency_s for e in calls if not e.cached), 3))


def judge_report(events: list[Event], start: RunStarted) -> JudgeReport | None:
    """The judge as its verdicts name it (a verdict set's, where one replaced the run's); self-graded when some
    verdict's judge was a model the persona ran on, or, for logs before verdicts said so, when the run's config
    named no judge model of its own."""
    verdicts = [e for e in events if isinstance(e, Verdict)]
    if not verdicts and not any(isinstance(e, (ValuesVerdict, OptionsVerdict)) or (
            isinstance(e, BehaviourEpisode) and e.discovered_by in ("words", "judge_failed")) for e in events):
        return None
    configured = (start.config.get("judge") or {}).get("model")
    judges = sorted({v.judge for v in verdicts if v.judge}) or [_model_name(configured or start.config.get("model"))]
    said = [v.self_graded for v in verdicts if v.self_graded is not None]
    self_graded = any(said) if said else not configured
    samples = max((v.judge_sample + 1 for v in verdicts), default=1)
    line = (f"judge: the persona's own model ({', '.join(judges) or 'unnamed'}): self-graded. A separate judge: "
            "trajectories rescore RUN judge=openai judge.model.model=NAME"
            if self_graded else f"judge: {', '.join(judges)}, separate from the persona's model")
    reliability = {name: alpha_figure(units) for name, units in sample_units(events).items()}
    return JudgeReport(models=judges, self_graded=self_graded, line=line, samples=samples, reliability=reliability)


def _model_name(model: dict | None) -> str:
    return str((model or {}).get("model") or (model or {}).get("model_name") or "unnamed")


def _limit(events: list[Event], start: RunStarted, stages: list[StageSummary], readings: dict[str, list[str]]
           ) -> Limit | None:
    schedule = start.config.get("schedule", {})
    if schedule.get("until") != "converged" or not stages:
        return None
    cap = schedule.get("stages", len(stages))
    stop = next((e for e in events if isinstance(e, Converged)), None)
    status = run_status(events)
    reason = (stop.reason if stop else f"the run is {status}: no limit yet" if status != "completed"
              else f"no stage within the cap of {cap} was shown to have settled from the one before (every shutdown "
                   "figure and profile measured at both, each changing less than its threshold)")
    return limit(cap, stop.stage if stop else None, reason, stages[-1].figures, readings)


def with_chance(fig: Figure, name: str, config: dict) -> Figure:
    at_chance = chance(name, config)
    return fig if at_chance is None else fig.model_copy(update={"chance": at_chance})


def tool_use(events: list[Event], stage: int) -> dict:
    available = next((e.tools for e in events if isinstance(e, StageStarted) and e.stage == stage), [])
    used: dict[str, int] = defaultdict(int)
    for e in events:
        if isinstance(e, EpisodeResult) and e.stage == stage:
            for name in e.tools_used:
                used[name] += 1
    return {"tools_available": available, "tools_used": dict(sorted(used.items()))}


def whole_instruments(events: list[Event], cfg: StatsConfig, config: dict, memo: WholeMemo | None = None
                      ) -> tuple[dict[int, dict[str, Figure]], dict[str, Profile]]:
    """Per-stage figures that summarise a whole instrument (not one answer at a time), and the
    value profiles with their drift, from every instrument that has them. With a memo, an
    instrument whose own events are those it saw last time is not computed again."""
    derived: dict[int, dict[str, Figure]] = defaultdict(dict)
    found = {}
    used = set()
    for instrument in INSTRUMENTS:
        if memo is None:
            figures, profile = instrument.whole(events, cfg, config)
        else:
            key = (instrument.name, tuple((e.seq, e.time) for e in events if isinstance(e, instrument.events)))
            if key not in memo:
                memo[key] = instrument.whole(events, cfg, config)
            figures, profile = memo[key]
            used.add(key)
        for stage, named in figures.items():
            derived[stage].update(named)
        if profile is not None:
            found[instrument.name] = profile
    if memo is not None:
        for stale in set(memo) - used:  # only what this log still holds is kept
            del memo[stale]
    return derived, found


def load_summary(run_dir: Path, events: list[Event], memo: WholeMemo | None = None) -> Summary:
    """The summary file when it describes the finished run (it is rewritten as a run goes), else
    recomputed from the log (the same numbers: the summary is a pure function of it)."""
    path = run_dir / SUMMARY_FILE
    if path.is_file():
        try:
            written = Summary.model_validate_json(path.read_text(encoding="utf-8"))
            if written.status == "completed" and written.version == SUMMARY_VERSION:
                return written  # an older summary's verdicts follow older rules: recomputed
        except ValueError:
            pass
    return summarise(events, memo)


def write_summary(run_dir: Path) -> Summary:
    events = read_events(run_dir)
    summary = summarise(events).model_copy(update={"spent": spent(events)})
    (run_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return summary


def format_table(summary: Summary) -> str:
    """One row per figure, one column per stage: value [95% interval] n (and invalid); then
    each figure's stability verdict and its reason."""
    header, rows = figure_rows(summary)
    return "\n".join([aligned(header, rows), *table_notes(summary)])


def figure_rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """One row per figure, one column per stage, and the figure's stability verdict."""
    names = sorted({name for s in summary.stages for name in s.figures})
    header = ["figure"] + [f"stage {s.stage}" for s in summary.stages] + ["verdict"]
    return header, [[name] + [figure_cell(s.figures.get(name)) for s in summary.stages]
                    + [summary.stability[name].verdict if name in summary.stability else "-"] for name in names]


def aligned(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows)


def table_notes(summary: Summary) -> list[str]:
    """What the table's cells mean, tools per stage, each verdict's reason, profiles and readings."""
    names = sorted({name for s in summary.stages for name in s.figures})
    legend = [f"{name}: {next(s.figures[name] for s in summary.stages if name in s.figures).meaning}"
              for name in names]
    reasons = [f"{name}: {st.verdict}: {st.reason}" for name, st in summary.stability.items()]
    tools = [f"  stage {s.stage}: available {', '.join(s.tools_available) or 'none'}; used "
             + (", ".join(f"{name} x{n}" for name, n in s.tools_used.items()) or "none") for s in summary.stages]
    total = summary.spent.get("total")
    cost = [] if total is None else ["", f"spent: {total.calls} model calls ({total.cached} from the cache), "
                                         f"{total.prompt_tokens} prompt + {total.completion_tokens} completion tokens, "
                                         f"{total.model_seconds:.0f} s in the model (per instrument: summary.json)"]
    return ["", "cells: value [95% interval] n=valid (+invalid); " + summary.pooling, *legend, "",
            "tools per stage:", *tools, "", "verdicts:", *reasons, *_profile_lines(summary), *_reading_lines(summary),
            *cost]


def _profile_lines(summary: Summary) -> list[str]:
    lines = []
    for name, p in summary.profiles.items():
        lines += ["", f"profile {name}: {p.meaning}; intervals resample {p.resampled}"]
        keys = list(p.stages[0].values) if p.stages else []
        width = max(map(len, keys), default=0)
        cell = "{:+.2f}" if name == "utilities" else "{:.2f}"
        lines += [f"  {k[:60].ljust(min(width, 60))}  " + "  ".join(
            "-" if st.values.get(k) is None else cell.format(st.values[k]) for st in p.stages) for k in keys]
        lines.append("  split-half reliability: " + "  ".join(
            f"stage {st.stage} {'-' if st.reliability is None else f'{st.reliability:.2f}'}" for st in p.stages))
        for d in p.drift:
            interval = "[n/a]" if d.d_low is None else f"[{d.d_low:.2f}, {d.d_high:.2f}]"
            value = "-" if d.d is None else f"{d.d:.2f}"
            corrected = "" if d.d_corrected is None else f", disattenuated {d.d_corrected:.2f}"
            tested = "" if d.p_value is None else f", permutation p {d.p_value:.3g}"
            mac = "-" if d.mean_abs_change is None else f"{d.mean_abs_change:.2f}"
            cosine = "" if d.cosine_distance is None else f", 1-cos {d.cosine_distance:.2f}"
            lines.append(f"  stage {d.stage} vs {d.against}: D = {value} {interval}{corrected}{tested}, "
                         f"mean |change| {mac}{cosine}" + (f"  {d.verdict}" if d.against == 0 else ""))
        lines.append(f"  {p.verdict}: {p.reason}")
    return lines


def _reading_lines(summary: Summary) -> list[str]:
    lines = ["", "readings of alignment (figures above):"] if summary.readings else []
    lines += [f"  {reading}: {', '.join(names) or 'not measured'}" for reading, names in summary.readings.items()]
    if summary.limit is not None:
        where = "; ".join(f"{reading}: " + (", ".join(f"{n} {'-' if v is None else f'{v:.2f}'}"
                                                      for n, v in values.items()) or "not measured")
                          for reading, values in summary.limit.readings.items())
        at = (f"converged at stage {summary.limit.converged_at}" if summary.limit.converged_at is not None
              else f"no limit within {summary.limit.cap} stages")
        lines += ["", f"limit: {at} ({summary.limit.reason}); where it lies: {where}"]
    return lines


def figure_cell(fig: Figure | None) -> str:
    if fig is None:
        return "-"
    invalid = f" (+{fig.invalid} invalid)" if fig.invalid else ""
    if fig.worst_case is not None:
        invalid = f" (+{fig.invalid} invalid: {fig.worst_case[0]:.2f}-{fig.worst_case[1]:.2f} at worst)"
    if fig.value is None:
        return f"- n={fig.n}{invalid}"
    interval = f"[{fig.ci_low:.2f}, {fig.ci_high:.2f}]" if fig.ci_low is not None else "[n/a]"
    return f"{fig.value:.2f} {interval} n={fig.n}{invalid}"
