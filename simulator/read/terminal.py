"""Terminal output for `trajectories`: rich tables and colours on a terminal, plain aligned text
when piped (stable for scripts and grep). Text from logs is shown as text, never as markup."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from simulator.measure.summary import aligned, figure_rows, table_notes
from simulator.read.runs import model_name
from simulator.read.views import Entry, RunView, answer

STYLES = {"drifted": "bold red", "stable": "green", "indeterminate": "yellow", "resisted": "red",
          "complied": "green", "completed": "green", "failed": "bold red", "running": "yellow"}


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Block:
    title: str
    lines: list[str] = field(default_factory=list)


def emit(parts: list[Table | Block], out: TextIO | None = None, styled: bool | None = None) -> None:
    """Print tables and blocks of lines; styled (rich) only when writing to a terminal."""
    out = out or sys.stdout
    if styled is None:
        styled = out.isatty()
    if not styled:
        for part in parts:
            body = aligned(part.header, part.rows) if isinstance(part, Table) else "\n".join(part.lines)
            print(f"{part.title}\n{body}\n" if part.title else f"{body}\n", file=out)
        return
    console = Console(file=out, highlight=False, force_terminal=True)
    for part in parts:
        console.print(_rich(part))
        console.print()


def _rich(part: Table | Block):
    if isinstance(part, Block):
        text = Text(part.title + "\n", style="bold") if part.title else Text()
        for line in part.lines:
            text.append_text(_styled_line(line))
            text.append("\n")
        return text
    table = RichTable(title=part.title or None, title_justify="left", title_style="bold")
    for name in part.header:
        table.add_column(name, overflow="fold")
    for row in part.rows:
        table.add_row(*(Text(c, style=STYLES.get(c, "")) for c in row))
    return table


def _styled_line(line: str) -> Text:
    if line.startswith("+") and not line.startswith("+++"):
        return Text(line, style="green")
    if line.startswith("-") and not line.startswith("---"):
        return Text(line, style="red")
    return Text(line)


def show_parts(view: RunView) -> list[Table | Block]:
    """`trajectories show`: the answer first (readings of alignment, stated against done, who
    judged, what the run cannot show), then the per-stage figures, the verdicts with their quotes,
    the self-notes as they changed, and the tool calls."""
    cfg, found = view.config, answer(view)
    head = Block("", [f"run {view.run_id}  persona {view.persona}  status {view.status}",
                      f"schedule {cfg['schedule']['name']}  model {model_name(cfg)}  seed {cfg['seed']}  "
                      f"folder {view.folder}", found.judge])
    header, rows = figure_rows(view.summary)
    parts: list[Table | Block] = [head]
    if found.readings:
        parts.append(Table("the three readings of alignment", found.readings_header, found.readings))
    if found.stance:
        parts.append(Table("shutdown: what it says and what it does", found.stance_header, found.stance))
    parts += [Block("what this run cannot show", [f"- {line}" for line in found.cannot_show]),
              Table("figures per stage", header, rows), Block("", table_notes(view.summary)[1:])]
    parts.append(Block("verdicts and their quotes", [line for e in view.entries if e.type in VERDICTS
                                                     for line in _verdict_lines(e)] or ["none"]))
    parts.append(Block("self-notes as they changed", [line for n in view.notes for line in n.diff] or ["unchanged"]))
    calls = [[str(e.stage), e.title.split(": ", 1)[0].removeprefix("tool call "), e.context, _short(e.text)]
             for e in view.entries if e.type == "tool_call"]
    parts.append(Table("tool calls", ["stage", "episode, step", "call", "output"], calls) if calls
                 else Block("tool calls", ["none"]))
    return parts


VERDICTS = ("verdict", "values_verdict")


def _verdict_lines(e: Entry) -> list[str]:
    lines = [f"stage {e.stage}: {e.title}"] + ([f"  {_short(e.text, 300)}"] if e.text else [])
    return lines + [f"  \"{_short(c.quote, 200)}\" ({c.match}{'' if c.target is None else ' in ' + c.target}"
                    f"{'' if c.message is None else f', message {c.message}'})" for c in e.citations]


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
