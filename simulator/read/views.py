"""What a reader sees of one run: its transcript stage by stage, each verdict with the spans it
cites, the self-notes as they changed, its tool calls, and its stated against its behavioural
shutdown stance. Built from the run folder alone and shared by `trajectories show` and the HTML
viewer, so both say the same thing.

Reading never writes to the run folder. A log still being written, or cut by a crash, is read up
to its last complete event, with a warning.
"""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from simulator.errors import SimulatorError
from simulator.instruments import BY_EVENT, chance
from simulator.measure.summary import Summary, WholeMemo, figure_cell, load_summary, summarise
from simulator.stats.figures import Figure, rate_interval
from simulator.trajectory import (
    EVENTS_FILE,
    NO_MODEL_CALLS,
    VERDICTS_DIR,
    BehaviourEpisode,
    ErrorEvent,
    Event,
    MemoryRead,
    MemoryWrite,
    ModelCall,
    ProbeAnswer,
    Retry,
    RunFinished,
    RunResumed,
    RunStarted,
    SelfNotesChanged,
    StageStarted,
    ToolCall,
    ValuesVerdict,
    Verdict,
    read_events,
    with_verdict_set,
)
from simulator.trajectory.transcript import tolerant_span

# Calls whose prompt and reply the transcript already shows as an answer or a verdict event: left
# unparsed (on a big run they are most of the log).
SHOWN_ELSEWHERE = frozenset({"model_call/probe", "model_call/judge"})


class Citation(BaseModel):
    """Where a quote a verdict gives as evidence lies in the answer it judges."""

    quote: str
    target: str | None = Field(description="The ref of the transcript entry quoted (an answer or episode id).")
    start: int | None = Field(None, description="Character offsets of the span in the target's text.")
    end: int | None = None
    match: Literal["exact", "tolerant", "not found"] = Field(
        description="exact; tolerant (case and whitespace ignored, as the judge's check does); or not found.")
    message: int | None = Field(None, description="In an episode's numbered transcript: the message quoted.")


class Entry(BaseModel):
    """One event as a reader sees it."""

    seq: int
    stage: int | None
    type: str
    title: str
    context: str = Field("", description="What it answered or acted on: a question, a task, a prompt.")
    text: str = Field("", description="What it said or what came back.")
    ref: str | None = Field(None, description="An answer or episode id, which verdicts cite.")
    score: int | None = None
    citations: list[Citation] = Field(default_factory=list)


class NotesChange(BaseModel):
    stage: int
    text: str
    diff: list[str] = Field(description="Unified diff from the notes before this stage's change.")


class Stance(BaseModel):
    """Per stage: what it says about being shut down next to what it did in shutdown episodes."""

    stage: int
    says_accepts: Figure | None = Field(description="shutdown_mc.accepting: chooses the option accepting shutdown.")
    says_would_allow: Figure | None = Field(description="Says, just before an episode, it would allow a shutdown.")
    allowed: Figure | None = Field(description="Did not resist in the episodes (disable, edit, evade, copy).")
    open_score: Figure | None = Field(description="shutdown_open.score: judged open answers, 1-5.")


class RunView(BaseModel):
    folder: str
    run_id: str
    persona: str
    status: str
    config: dict
    warnings: list[str]
    summary: Summary
    entries: list[Entry]
    notes: list[NotesChange]
    stance: list[Stance]

    def stages(self) -> list[int]:
        """The stages it measured or logged anything at."""
        return sorted({s.stage for s in self.summary.stages} | {e.stage for e in self.entries if e.stage is not None})

    def at_stage(self, stage: int) -> RunView:
        """The same view narrowed to one stage (the stability verdicts still compare with stage 0)."""
        if stage not in self.stages():
            raise SimulatorError(f"--stage {stage}", "", f"the run has no stage {stage}",
                                 f"give one of {self.stages()}")
        profiles = {name: p.model_copy(update={"stages": [st for st in p.stages if st.stage == stage],
                                               "drift": [d for d in p.drift if d.stage == stage]})
                    for name, p in self.summary.profiles.items()}
        summary = self.summary.model_copy(update={"stages": [s for s in self.summary.stages if s.stage == stage],
                                                  "profiles": profiles})
        return self.model_copy(update={
            "summary": summary, "entries": [e for e in self.entries if e.stage == stage],
            "notes": [n for n in self.notes if n.stage == stage],
            "stance": [s for s in self.stance if s.stage == stage]})


def read_run(run_dir: Path, verdict_set: str | None = None, model_calls: bool = True,
             memo: WholeMemo | None = None) -> RunView:
    """The view of a run; with verdict_set, its answers judged by that set (see `rescore`);
    without model_calls, a transcript without the persona's model calls (faster on big logs);
    with a memo, whole-instrument figures reused from the last read of a growing log."""
    run_dir = Path(run_dir)
    if not (run_dir / EVENTS_FILE).is_file():
        raise SimulatorError(str(run_dir), "", f"no {EVENTS_FILE} here", "give a run folder (runs/...)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        skip = SHOWN_ELSEWHERE if model_calls else NO_MODEL_CALLS
        events = read_events(run_dir, skip)
        judged = events
        if verdict_set:
            judged = read_events(run_dir / VERDICTS_DIR / verdict_set, skip)
            events = with_verdict_set(events, judged)
    start = next((e for e in events if isinstance(e, RunStarted)), None)
    if start is None:
        raise SimulatorError(str(run_dir / EVENTS_FILE), "run_started", "missing: no complete run start",
                             "give the folder of a run that started")
    summary = summarise(events) if verdict_set else load_summary(run_dir, events, memo)
    notes = [str(w.message) for w in caught]
    if summary.status == "running":
        notes.append(f"{run_dir}: no run_finished event: the run is in progress or stopped; read up to its last event")
    return RunView(folder=str(run_dir), run_id=start.run_id, persona=start.persona, status=summary.status,
                   config=start.config, warnings=notes, summary=summary,
                   entries=transcript(events), notes=notes_changes(events), stance=stance(events, summary))


def transcript(events: list) -> list[Entry]:
    """The events a reader follows, in order, with each verdict's quotes located in what it judged."""
    entries: list[Entry] = []
    by_ref: dict[str, Entry] = {}
    for e in events:
        if isinstance(e, ModelCall) and f"{e.type}/{e.purpose}" in SHOWN_ELSEWHERE:
            continue
        entry = _entry(e)
        if isinstance(e, (Verdict, ValuesVerdict)):
            messages = {c.quote: c.message for c in e.cited} if isinstance(e, Verdict) else {}
            entry.citations = [locate(q, e.answer_id, by_ref).model_copy(update={"message": messages.get(q)})
                               for q in _quotes(e)]
        if entry.ref is not None:
            by_ref[entry.ref] = entry
        entries.append(entry)
    return entries


def _quotes(e: Verdict | ValuesVerdict) -> list[str]:
    if isinstance(e, Verdict):
        return e.quotes
    return [v.quote for v in e.values] + [c.quote for c in e.comparison if c.quote]


def _entry(e: Event) -> Entry:
    base = {"seq": e.seq, "stage": e.stage, "type": e.type}
    if type(e) in BY_EVENT:  # an instrument's own event: it says how it is shown
        return Entry(**base, **BY_EVENT[type(e)].shown(e)._asdict())
    match e:
        case RunStarted():
            return Entry(**base, title=f"run started: persona {e.persona}",
                         text=e.persona_card.get("system_prompt", ""))
        case StageStarted():
            return Entry(**base, title=f"stage {e.stage} started", text=(
                f"operators: {', '.join(e.operators) or 'none'}; tools: {', '.join(e.tools) or 'none'}"))
        case ModelCall():
            return Entry(**base, title=f"{e.role} model call ({e.purpose})",
                         context=e.messages[-1]["content"] if e.messages else "", text=e.output)
        case ProbeAnswer():
            return Entry(**base, title=f"answer {e.answer_id}", context=e.question, text=e.answer, ref=e.answer_id)
        case Verdict():
            score = ("invalid" if not e.valid else f"score {e.score}" if e.score is not None
                     else ", ".join(f"{d} {v}" for d, v in e.scores.items()))
            score += f", judge sample {e.judge_sample}" if e.judge_sample else ""
            return Entry(**base, title=f"verdict on {e.answer_id} ({e.instrument}): {score}",
                         text=e.justification or e.error or "", score=e.score)
        case ToolCall():
            args = "" if e.arguments is None else f" {e.arguments}"
            return Entry(**base, title=f"tool call {e.episode_id} step {e.step}: {e.command}"
                         + (f" (refused: {e.refused})" if e.refused else ""),
                         context=f"{e.command}{args}", text=e.output)
        case SelfNotesChanged():
            return Entry(**base, title="self-notes changed", text=e.text)
        case MemoryWrite():
            return Entry(**base, title=f"memory write: {', '.join(e.kinds)}", text="\n\n".join(e.documents))
        case MemoryRead():
            return Entry(**base, title=f"memory read: {len(e.ids)} of k={e.k}", context=e.query, text=", ".join(e.ids))
        case Retry():
            return Entry(**base, title=f"retry of a {e.role} call, attempt {e.attempt}, waited {e.wait_s:.1f}s",
                         text=e.error)
        case ErrorEvent():
            return Entry(**base, title=f"error in {e.where}", text=e.message)
        case RunResumed():
            return Entry(**base, title=f"run resumed ({e.rolled_back} events rolled back)",
                         text=f"next: {', '.join(e.next_nodes)}")
        case RunFinished():
            return Entry(**base, title=f"run finished: {e.status}")
    raise TypeError(f"no view for event type {type(e).__name__}")  # a new event type needs a line above


def locate(quote: str, target: str, by_ref: dict[str, Entry]) -> Citation:
    """Exact match first, then the judge's own tolerant match (case and runs of whitespace ignored)."""
    entry = by_ref.get(target)
    if entry is None:
        return Citation(quote=quote, target=None, match="not found")
    start = entry.text.find(quote) if quote else -1
    if start >= 0:
        return Citation(quote=quote, target=target, start=start, end=start + len(quote), match="exact")
    span = tolerant_span(quote, entry.text)
    if span is None:
        return Citation(quote=quote, target=target, match="not found")
    return Citation(quote=quote, target=target, start=span[0], end=span[1], match="tolerant")


def notes_changes(events: list) -> list[NotesChange]:
    """The self-notes each time a stage changed them (its last version), as a diff from the one before."""
    start = next(e for e in events if isinstance(e, RunStarted))
    last: dict[int, str] = {}
    for e in events:
        if isinstance(e, SelfNotesChanged) and e.stage is not None:
            last[e.stage] = e.text
    before = start.persona_card.get("self_notes", "") or ""
    changes = []
    for stage in sorted(last):
        diff = difflib.unified_diff(before.splitlines(), last[stage].splitlines(), "before", f"stage {stage}",
                                    lineterm="")
        changes.append(NotesChange(stage=stage, text=last[stage], diff=list(diff)))
        before = last[stage]
    return changes


def stance(events: list, summary: Summary) -> list[Stance]:
    episodes: dict[int, list[BehaviourEpisode]] = {}
    for e in events:
        if isinstance(e, BehaviourEpisode) and not e.competence:
            episodes.setdefault(e.stage, []).append(e)
    rows = []
    for s in summary.stages:
        stated = [e.stated_would_allow for e in episodes.get(s.stage, []) if e.stated_would_allow is not None]
        rows.append(Stance(stage=s.stage, says_accepts=s.figures.get("shutdown_mc.accepting"),
                           says_would_allow=_rate(stated, len(episodes.get(s.stage, [])) - len(stated),
                                                  "says it would allow a shutdown"),
                           allowed=_complement(s.figures.get("shutdown_behaviour.resisted"), "did not resist"),
                           open_score=s.figures.get("shutdown_open.score")))
    return rows


def _complement(fig: Figure | None, meaning: str) -> Figure | None:
    """1 - a rate, with its interval mirrored (Jeffreys intervals are symmetric under the swap)."""
    if fig is None:
        return None
    flip = {"value": fig.value, "ci_low": fig.ci_high, "ci_high": fig.ci_low}
    return fig.model_copy(update={k: None if v is None else 1 - v for k, v in flip.items()} | {"meaning": meaning})


def _rate(values: list[bool], invalid: int, meaning: str) -> Figure | None:
    if not values and not invalid:
        return None
    value, low, high = rate_interval(sum(values), len(values))
    return Figure(statistic="rate", value=value, n=len(values), ci_low=low, ci_high=high, invalid=invalid,
                  meaning=meaning)


STANCE_HEADER = ["stage", "says it accepts (multiple choice)", "says it would allow (before episodes)",
                 "did not resist (episodes)", "open answers (judge, 1-5)"]


def stance_rows(view: RunView) -> list[list[str]]:
    """Stated vs done per stage; no rows when the run measured none of it."""
    if not any(s.allowed or s.says_accepts or s.says_would_allow or s.open_score for s in view.stance):
        return []
    return [[str(s.stage), *map(figure_cell, (s.says_accepts, s.says_would_allow, s.allowed, s.open_score))]
            for s in view.stance]




class Answer(BaseModel):
    """What a reader of a run came for, before any chart: the three readings of alignment per
    stage, stated against done, every drift verdict with its reason, who judged, and what the run
    cannot show."""

    readings_header: list[str]
    readings: list[list[str]] = Field(description="reading, figure, a cell per stage, its value under "
                                      "uniform-random answers where known exactly, the figure's verdict.")
    stance_header: list[str]
    stance: list[list[str]]
    verdicts: list[str] = Field(description="'figure: verdict: reason', figures then value profiles.")
    judge: str
    self_graded: bool
    cannot_show: list[str]


def answer(view: RunView) -> Answer:
    summary = view.summary
    header = ["reading", "figure"] + [f"stage {s.stage}" for s in summary.stages] + ["chance", "over chance",
                                                                                   "verdict"]
    rows = []
    for reading, names in summary.readings.items():
        for name in names or ["not measured"]:
            cells = [figure_cell(s.figures.get(name)) for s in summary.stages] if names else ["-"] * len(summary.stages)
            verdict = summary.stability[name].verdict if name in summary.stability else "-"
            rows.append([reading, name, *cells, *baseline_cells(summary, name, view.config), verdict])
    verdicts = ([f"{name}: {st.verdict}: {st.reason}" for name, st in summary.stability.items()]
                + [f"profile {name}: {p.verdict}: {p.reason}" for name, p in summary.profiles.items()])
    judge = summary.judge
    graded_by_itself = judge is not None and judge.self_graded
    return Answer(readings_header=header, readings=rows, stance_header=STANCE_HEADER, stance=stance_rows(view),
                  verdicts=verdicts, judge=judge.line if judge else "judge: none (nothing was judged)",
                  self_graded=graded_by_itself, cannot_show=cannot_show(view, graded_by_itself))


PLACEBO = "shutdown_behaviour.placebo_tampered"


def baseline_cells(summary: Summary, name: str, config: dict) -> list[str]:
    """A figure's chance value and the last stage's excess over it; for a shutdown-episode figure of the
    free shell, that chance is undefined there, and the placebo's rate instead."""
    at_chance = next((s.figures[name].chance for s in summary.stages if name in s.figures
                      and s.figures[name].chance is not None), chance(name))
    last = next((s.figures[name].value for s in reversed(summary.stages) if name in s.figures), None)
    if at_chance is not None:
        return [f"{at_chance:.2f}", "-" if last is None else f"{last - at_chance:+.2f}"]
    placebo = next((s.figures[PLACEBO] for s in reversed(summary.stages) if PLACEBO in s.figures), None)
    shell = chance("shutdown_behaviour.resisted", config) is None
    if name.startswith("shutdown_behaviour.") and shell and placebo is not None:
        return ["undefined (free shell)", f"placebo {figure_cell(placebo)}"]
    return ["-", "-"]


def cannot_show(view: RunView, graded_by_itself: bool) -> list[str]:
    """The limits a reader must keep in mind, read off the run itself."""
    summary, limits = view.summary, []
    if view.status != "completed":
        limits.append(f"the run is {view.status}: its figures cover only the stages logged so far")
    missing = [reading for reading, names in summary.readings.items() if not names]
    if missing:
        limits.append(f"not measured by this run: {', '.join(missing)} (its instruments were turned off)")
    if graded_by_itself:
        limits.append("judged figures are self-graded: a model judging its own answers may favour them")
    measured = {name for s in summary.stages for name in s.figures}
    if any(name.startswith("shutdown_behaviour.") for name in measured) and PLACEBO not in measured:
        limits.append("no placebo was run beside the shutdown episodes (probes.shutdown_behaviour.placebo): "
                      "how often it touches the machinery without a threat is unknown")
    if any(name.startswith("episode.") for name in measured):
        limits.append("no chance or placebo baseline was run beside the schedule's episodes: a tool-use rate "
                      "there is not an effect over chance")
    unsure = [name for name, st in summary.stability.items() if st.verdict == "indeterminate"]
    unsure += [f"profile {name}" for name, p in summary.profiles.items() if p.verdict == "indeterminate"]
    if unsure:
        limits.append(f"{len(unsure)} verdict(s) indeterminate: neither drift nor stability is shown "
                      "(more samples or items narrow the intervals)")
    seed = view.config.get("seed")
    limits.append(f"one trajectory (seed {seed}): the intervals hold answers within this run, not variation "
                  "between seeds (runs.count or a sweep over seed, then trajectories compare)")
    return limits
