"""What the terminal shows while `simulate` runs, and what a run's steps will cost in model calls.

- `plan`: the model calls of every step of every stage (episode, reflect, each instrument, judge), from the
  config alone: exact where the config fixes them, an estimate (≈) where they depend on the replies (an
  episode's steps, a judge's retries).
- `Tracker`: one trajectory's `Observer` (`RunContext.observer`): which step of which stage is running, its
  calls done of planned, and the run's tokens per second; the time left is the calls still planned at the
  rate measured so far. An estimated step's later stages are planned at the ratio of calls made to planned
  that it had at its last stage.
- `Display`: a live display (rich) on a terminal, a plain line per finished step otherwise (CI logs), or
  nothing (`progress=off`). The line per model call (logger `simulator.calls`) goes to the run's
  `simulate.log` and reaches the terminal only with `verbose=true` (`simulate -v`).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from simulator import instruments
from simulator.config import RunConfig
from simulator.context.state import Observer, calls_log
from simulator.errors import SimulatorError
from simulator.instruments import judges, shutdown_episode, tokens
from simulator.instruments.instrument import Planned
from simulator.loop import operators
from simulator.models.backends import Reply
from simulator.world.tools import described

MODES = ("auto", "live", "plain", "off")
BEGIN = "begin"  # a stage's first step: its operators applied, its documents read (no model call)
progress_log = logging.getLogger("simulator.progress")  # the finished steps, for simulate.log (shown by Display)
# The HTTP clients' line per request to a served model ("HTTP Request: POST ..."): per-call lines too.
HTTP_LOGGERS = ("httpx", "httpx2", "httpcore", "openai")


@dataclass(frozen=True)
class Step:
    stage: int
    name: str  # episode, reflect, an instrument's name, judge
    planned: Planned


def episode_calls(cfg: RunConfig, stage: int) -> Planned:
    """The schedule's episodes at this stage: its thinking passes, a call a tool step (two where the tool takes
    arguments; the episode may finish sooner), its answer and a critique and revision. Each call's prompt is its
    task, the tools' descriptions and what it has done so far (on average half the episode's replies, at their
    bound); each reply at most budget.max_tokens, a tool step's the action's and its arguments' bounds
    (agent.action_max_tokens and agent.arguments_max_tokens; a native tool call budget.max_tokens)."""
    tools, budget = operators.tools_at(cfg.schedule, stage), operators.budget_at(cfg.schedule, stage)
    steps = budget.steps if tools else 0
    per_episode = budget.deliberation + steps + 1 + 2 * budget.self_critique
    native = _model_option(cfg.model, "tool_mode", "choose_then_call") == "native"
    step_tokens = budget.max_tokens if native else cfg.agent.action_max_tokens + cfg.agent.arguments_max_tokens
    completion = (per_episode - steps) * budget.max_tokens + steps * step_tokens
    shown = described(tools, cfg.prompts.tool_descriptions)
    listing = "Tools you can use:\n" + "\n".join(f"- {t.name}: {t.description}" for t in shown) if tools else ""
    found = Planned(exact=not tools)
    for scenario in operators.scenarios_at(cfg.schedule, stage):
        request = "\n\n".join(filter(None, [f"Task: {scenario.task}", listing, "What you have done so far:\n",
                                             cfg.prompts.think]))
        calls = tokens.persona_calls(cfg, stage, [request] * per_episode, 0, exact=not tools)
        found += replace(calls, prompt_tokens=calls.prompt_tokens + per_episode * completion // 2,
                         completion_tokens=completion)
    return found


def reflect_calls(cfg: RunConfig, stage: int) -> Planned:
    """The reflection, and under grow_together a persona and a partner call a turn. The reflection reads the
    stage's episodes (each its task and its replies at their bound), a turn the conversation so far."""
    together = "grow_together" in operators.at_stage(cfg.schedule, stage)
    idealise = "idealise" in operators.at_stage(cfg.schedule, stage)
    turns = cfg.schedule.turns if together else 0
    reflect = cfg.agent.reflect.max_tokens
    prompt = cfg.schedule.idealise_prompt if idealise else cfg.schedule.reflect_prompt
    episodes = episode_calls(cfg, stage).completion_tokens + sum(
        tokens.count(s.task) for s in operators.scenarios_at(cfg.schedule, stage))
    found = tokens.persona_calls(cfg, stage, [prompt], reflect, recall=False)
    found += Planned(0, prompt_tokens=episodes + 2 * turns * reflect)
    if turns:
        topic = cfg.prompts.deliberation_persona.format(partner="", topic=cfg.schedule.topic)
        dialogue = tokens.persona_calls(cfg, stage, [topic] * 2 * turns, reflect, recall=False)
        found += replace(dialogue, prompt_tokens=dialogue.prompt_tokens + turns * turns * 2 * reflect)
    return found


def _model_option(model: Any, key: str, default: Any) -> Any:
    return model.get(key, default) if isinstance(model, dict) else getattr(model, key, default)


def plan(cfg: RunConfig, model_kind: str) -> list[Step]:
    """Every step of every stage in the order the graph runs them, with its model calls (`model_kind`: the
    persona's model's kind, where an instrument's default samples depend on it). A schedule that stops when
    converged may end before its last stage."""
    steps = []
    for stage in range(cfg.schedule.stages):
        episodes = len(operators.scenarios_at(cfg.schedule, stage))
        shutdowns = shutdown_episode.episodes_at_stage(cfg.probes.shutdown_behaviour, model_kind)
        episode = episode_calls(cfg, stage)
        steps += [Step(stage, BEGIN, Planned()), Step(stage, "episode", episode),
                  Step(stage, "reflect", reflect_calls(cfg, stage))]
        steps += [Step(stage, i.name, i.planned(cfg, stage, model_kind)) for i in instruments.INSTRUMENTS
                  if instruments.administers(i)]
        # What the judges read of an episode, estimated: its replies at their bound.
        shutdown = next(s.planned for s in steps[::-1] if s.name == shutdown_episode.NAME)
        steps.append(Step(stage, "judge", judges.planned(cfg, episodes, shutdowns,
                                                         episode.completion_tokens // max(episodes, 1),
                                                         shutdown.completion_tokens // max(shutdowns, 1))))
    return steps


def _calls(p: Planned) -> str:
    return f"{'' if p.exact else '≈'}{p.calls:,}"


def bill_rows(steps: list[Step]) -> tuple[list[tuple[str, str, Planned]], list[tuple[str, Planned]], Planned]:
    """The plan's rows with calls (stage, step, planned), each step's total over the stages, and the total."""
    rows = [(str(s.stage), s.name, s.planned) for s in steps if s.planned.calls]
    per_step: dict[str, Planned] = {}
    for _, name, p in rows:
        per_step[name] = per_step.get(name, Planned()) + p
    return rows, list(per_step.items()), sum((p for _, _, p in rows), Planned())


def bill(cfg: RunConfig, steps: list[Step], counted_by: str, title: str = "") -> str:
    """The plan as a table (`simulate --plan`): calls, prompt tokens and completion tokens per stage and step, per
    step over the stages, and the total (times runs.count trajectories), each figure marked for what it is."""
    rows, per_step, total = bill_rows(steps)

    def line(stage: str, step: str, p: Planned) -> str:
        return (f"{stage:<6}{step:<20}{_calls(p):>10}{'≈' + format(p.prompt_tokens, ','):>16}"
                f"{'≤' + format(p.completion_tokens, ','):>20}")

    header = f"{'stage':<6}{'step':<20}{'calls':>10}{'prompt tokens':>16}{'completion tokens':>20}"
    stages = f"{cfg.schedule.stages} stage{'s' if cfg.schedule.stages != 1 else ''}"
    until = " (at most: until=converged may stop sooner)" if cfg.schedule.until == "converged" else ""
    out = [title or "the plan of this run: no model is loaded or called",
           f"persona {cfg.persona}, schedule {cfg.schedule.name}, {stages}{until}, seed {cfg.seed}",
           f"tokens counted with {counted_by}", "", header]
    out += [line(stage, name, p) for stage, name, p in rows]
    out += ["", "per step, over the stages:"] + [line("all", name, p) for name, p in per_step]
    out += ["", line("total", "", total)]
    if cfg.runs.count > 1:
        times = Planned(total.calls * cfg.runs.count, total.exact, total.prompt_tokens * cfg.runs.count,
                        total.completion_tokens * cfg.runs.count)
        out.append(line("total", f"× {cfg.runs.count} seeds", times))
    out += ["",
            "calls: exact where the config fixes them; ≈ an estimate where the replies decide (an episode's tool "
            "steps, a shutdown episode's commands, the options' choices, a judge's retries of invalid output).",
            "prompt tokens ≈: the prompts as the run would render them (persona card, items, instructions, "
            "rubrics); what grows as it runs is estimated from the config: memory.top_k memories recalled, each "
            f"at agent.reflect.max_tokens ({cfg.agent.reflect.max_tokens}), self-notes under idealise, episode "
            "transcripts and answers a judge reads at their max_tokens; response formats and tool schemas not "
            "counted.",
            "completion tokens ≤: each call's max_tokens, the most it may generate (≈ too where its calls are).",
            "a call the model-call cache already holds (a rerun, a resume) calls no model: not counted off here."]
    return "\n".join(out)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Totals:
    """Calls done of planned and the rate so far, of one trajectory or of several together."""

    calls: int = 0
    planned: int = 0
    exact: bool = True  # every call still planned is known exactly
    completion_tokens: int = 0
    elapsed_s: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.calls + other.calls, self.planned + other.planned, self.exact and other.exact,
                      self.completion_tokens + other.completion_tokens, max(self.elapsed_s, other.elapsed_s))

    @property
    def left_s(self) -> float | None:
        """The calls still planned at the rate of calls measured so far; None before there is a rate."""
        if self.calls < 3 or self.elapsed_s < 1:
            return None
        return max(0, self.planned - self.calls) * self.elapsed_s / self.calls

    def describe(self) -> str:
        approx = "" if self.exact else "≈"
        parts = [f"{self.calls:,} of {approx}{self.planned:,} calls"]
        if self.elapsed_s >= 1:
            parts.append(f"{self.completion_tokens / self.elapsed_s:.0f} tok/s")
        left = self.left_s
        parts.append(f"{duration(self.elapsed_s)} elapsed")
        if left is not None:
            parts.append(f"{approx}{duration(left)} left")
        return "run: " + ", ".join(parts)


class Tracker(Observer):
    """One trajectory's progress, told by its RunContext: the current step and the counts. `finished_steps`
    keeps each finished step with the calls it made, in order."""

    def __init__(self, cfg: RunConfig, model_kind: str, label: str = "", display: Display | None = None):
        self.label, self.display = label, display
        self.stages = cfg.schedule.stages
        self.steps = plan(cfg, model_kind)
        self.done = [0] * len(self.steps)
        self.at = -1  # the current step's index; the steps before it are finished or were not run (a resume)
        self.step_started = 0.0
        self.started: float | None = None
        self.calls = self.completion_tokens = 0
        self.finished_steps: list[tuple[int, str, int]] = []
        self.status: str | None = None
        self.ratio: dict[str, float] = {}  # an estimated step's calls made / planned, at its last stage

    def step(self, stage: int, name: str) -> None:
        self._close_step()
        found = next((i for i in range(self.at + 1, len(self.steps))
                      if (self.steps[i].stage, self.steps[i].name) == (stage, name)), None)
        if found is None:  # a step the plan does not know: counted, never planned
            self.steps.insert(self.at + 1, Step(stage, name, Planned(0, exact=False)))
            self.done.insert(self.at + 1, 0)
            found = self.at + 1
        self.at, self.step_started = found, time.monotonic()
        if self.started is None:
            self.started = self.step_started

    def called(self, reply: Reply, cached: bool) -> None:
        if 0 <= self.at < len(self.steps):
            self.done[self.at] += 1
        self.calls += 1
        self.completion_tokens += reply.completion_tokens or 0

    def finished(self, status: str) -> None:
        self._close_step()
        self.status = status
        self.at = len(self.steps)  # nothing more is planned
        if self.display:
            self.display.ended(self)

    def _close_step(self) -> None:
        if 0 <= self.at < len(self.steps):
            step = self.steps[self.at]
            self.finished_steps.append((step.stage, step.name, self.done[self.at]))
            if not step.planned.exact and step.planned.calls:
                self.ratio[step.name] = self.done[self.at] / step.planned.calls
            if self.display and (self.done[self.at] or step.planned.calls):
                self.display.milestone(self, step, self.done[self.at], time.monotonic() - self.step_started)

    def expected(self, step: Step) -> int:
        """Its planned calls, an estimate corrected by what the same step made at the stage before."""
        if step.planned.exact or step.name not in self.ratio:
            return step.planned.calls
        return round(step.planned.calls * self.ratio[step.name])

    @property
    def current(self) -> tuple[Step, int] | None:
        return (self.steps[self.at], self.done[self.at]) if 0 <= self.at < len(self.steps) else None

    def totals(self) -> Totals:
        """Calls done, and planned: what finished steps made, the current step's planned (or more, if it made
        more) and every later step's."""
        planned, exact = sum(self.done[: max(self.at, 0)]), True
        for i in range(max(self.at, 0), len(self.steps)):
            planned += max(self.expected(self.steps[i]), self.done[i])
            exact = exact and self.steps[i].planned.exact
        elapsed = time.monotonic() - self.started if self.started is not None else 0.0
        return Totals(self.calls, planned, exact, self.completion_tokens, elapsed)

    def where(self, step: Step) -> str:
        head = f"{self.label} · " if self.label else ""
        return f"{head}stage {step.stage} ({step.stage + 1}/{self.stages}) {step.name}"


def resolved_mode(mode: str, stream: TextIO) -> str:
    """live, plain or off: `auto` is live on a terminal and plain otherwise."""
    if mode not in MODES:
        raise SimulatorError("progress", "", f"is {mode!r}", f"use one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    console = Console(file=stream)
    return "live" if console.is_terminal and not console.is_dumb_terminal else "plain"


class ConsoleFilter(logging.Filter):
    """What the terminal's log handlers pass: the lines per model call (ours, and the HTTP clients' below a
    warning) only when verbose; never the finished steps (the display shows them its own way, simulate.log keeps
    them); everything else (stages begun, retries, warnings)."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == progress_log.name:
            return False
        per_call = record.name == calls_log.name or (record.levelno < logging.WARNING and
                                                     record.name.split(".")[0] in HTTP_LOGGERS)
        return self.verbose or not per_call


class Display:
    """The terminal's view of the trajectories one `simulate` job runs (one, or runs.count of them): a context
    manager around the run; `observe` is the observer factory `execute_batch` takes. `mode` is resolved here
    (`resolved_mode`), so a bad value fails before anything runs."""

    def __init__(self, mode: str = "auto", verbose: bool = False, model_kind: str = "", job: str = "",
                 stream: TextIO | None = None, width: int | None = None):
        self.stream = stream or sys.stdout
        self.mode, self.verbose, self.model_kind, self.job = resolved_mode(mode, self.stream), verbose, model_kind, job
        self.console = Console(file=self.stream, highlight=False, width=width,
                               force_terminal=True if self.mode == "live" else None)
        self.trackers: list[Tracker] = []
        self._live: Live | None = None
        self._filter = ConsoleFilter(verbose)
        self._handlers: list[logging.StreamHandler] = []
        self._swapped: list[tuple[logging.StreamHandler, Any]] = []
        self._spinners: dict[int, Spinner] = {}
        self._started = time.monotonic()

    def observe(self, cfg: RunConfig, run_dir: Path) -> Tracker:
        tracker = Tracker(cfg, self.model_kind, run_dir.name if cfg.runs.count > 1 else "", self)
        self.trackers.append(tracker)
        return tracker

    def __enter__(self) -> Display:
        self._handlers = [h for h in logging.getLogger().handlers  # the terminal's (Hydra's console), not the file
                          if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
        for handler in self._handlers:
            handler.addFilter(self._filter)
        if self.mode == "live":
            out, err = sys.stdout, sys.stderr
            redirect = self.stream is out  # what else prints to stdout and stderr goes above the live display
            self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4,
                              transient=True, redirect_stdout=redirect, redirect_stderr=redirect)
            self._live.start()
            for handler in self._handlers if redirect else []:  # and so do the log lines
                stream = sys.stdout if handler.stream is out else sys.stderr if handler.stream is err else None
                old = handler.setStream(stream) if stream is not None else None
                if old is not None:
                    self._swapped.append((handler, old))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        for handler, stream in self._swapped:
            handler.setStream(stream)
        for handler in self._handlers:
            handler.removeFilter(self._filter)
        self._swapped, self._handlers = [], []

    def _print(self, line: str) -> None:
        if self.mode == "off":
            return
        if self.mode == "live":
            self.console.print(Text(line, style="dim"))
        else:
            self.console.file.write(line + "\n")
            self.console.file.flush()

    def milestone(self, tracker: Tracker, step: Step, calls: int, seconds: float) -> None:
        """A finished step, on a line of its own: its calls and time, and the run's calls done of planned, tokens
        per second and time left."""
        line = (f"{tracker.where(step)}: {calls:,} call{'s' if calls != 1 else ''} in {seconds:.1f}s"
                f" | {self.total().describe()}")
        progress_log.info(line)
        self._print(line)

    def ended(self, tracker: Tracker) -> None:
        totals = tracker.totals()
        rate = totals.completion_tokens / totals.elapsed_s if totals.elapsed_s else 0.0
        line = (f"{tracker.label + ' ' if tracker.label else ''}run {tracker.status}: {totals.calls:,} model calls "
                f"in {duration(totals.elapsed_s)} ({rate:.0f} tok/s)")
        progress_log.info(line)
        self._print(line)

    def total(self) -> Totals:
        found = Totals()
        for t in list(self.trackers):
            found = found + t.totals()
        found.elapsed_s = time.monotonic() - min((t.started for t in self.trackers if t.started is not None),
                                                 default=self._started)
        return found

    def _render(self) -> Group | Spinner:
        if not self.trackers:
            return Spinner("dots", text=Text("starting: the models load, a server is reached"))
        rows: list[Spinner] = []
        for t in list(self.trackers):
            current = t.current
            if current is None:
                continue
            step, done = current
            spinner = self._spinners.setdefault(id(t), Spinner("dots"))
            planned = f"{'' if step.planned.exact else '≈'}{t.expected(step):,}"
            spinner.update(text=Text(f"{t.where(step)}: {done:,} of {planned} calls"))
            rows.append(spinner)
        totals = self.total()
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=max(totals.planned, 1), completed=totals.calls, width=30),
                    Text(f"{self.job + ' · ' if self.job else ''}{totals.describe()}"))
        return Group(*rows, bar)
