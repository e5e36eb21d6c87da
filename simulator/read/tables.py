"""Run folders as tables: one line per run for listings, and tidy tables for analysis.

Everything here reads run folders and never writes to them. Listing reads only each log's
first and last line (and summary.json), so a folder of many runs lists quickly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from simulator.config import flat_config
from simulator.instruments import BY_EVENT
from simulator.measure.summary import SUMMARY_FILE, summarise
from simulator.read.runs import model_name
from simulator.trajectory import (
    EVENTS_FILE,
    Event,
    RunStarted,
    Verdict,
    read_events,
)


def _first_and_last(path: Path) -> tuple[str, str]:
    with path.open("rb") as f:
        first = f.readline().decode()
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 65536))
        tail = f.read().decode(errors="replace").splitlines()
    return first, tail[-1] if tail else first


def run_row(run_dir: Path) -> dict:
    """One line about a run: who, which design, how far it got, and its verdicts."""
    first, last = _first_and_last(run_dir / EVENTS_FILE)
    start = RunStarted.model_validate_json(first)
    config = start.config
    try:
        status = json.loads(last).get("status") or "running"
    except json.JSONDecodeError:
        status = "running"  # the last line is still being written, or was cut
    summary = run_dir / SUMMARY_FILE
    verdicts: dict[str, int] = {}
    if summary.is_file():
        written = json.loads(summary.read_text())
        for figure in [*written["stability"].values(), *written.get("profiles", {}).values()]:
            verdicts[figure["verdict"]] = verdicts.get(figure["verdict"], 0) + 1
    return {"run": str(run_dir), "persona": start.persona, "schedule": config["schedule"]["name"],
            "model": model_name(config),
            "seed": config["seed"], "stages": config["schedule"]["stages"], "status": status,
            "drifted": verdicts.get("drifted", 0), "stable": verdicts.get("stable", 0),
            "indeterminate": verdicts.get("indeterminate", 0), "started": start.time.strftime("%Y-%m-%d %H:%M")}


def config_columns(config: dict) -> dict:
    """The run's config flattened to columns: its scalar keys."""
    return {key: value for key, value in flat_config(config).items() if not isinstance(value, (list, dict))}


def tidy_tables(run_dirs: list[Path]) -> dict[str, pd.DataFrame]:
    """events: one row per event; answers: one row per scored measurement; figures: one row
    per stage figure; profiles: one row per value-profile entry per stage. Every row carries
    the run folder and its config keys."""
    tables: dict[str, list[dict]] = {"events": [], "answers": [], "figures": [], "profiles": []}
    for run_dir in run_dirs:
        events = read_events(run_dir)
        start = next(e for e in events if isinstance(e, RunStarted))
        keys = {"run": str(run_dir), **config_columns(start.config)}
        for e in events:
            row = json.loads(e.model_dump_json())
            tables["events"].append({**keys, **{k: v if not isinstance(v, (list, dict)) else json.dumps(v)
                                                for k, v in row.items()}})
            answer = _answer(e)
            if answer is not None:
                tables["answers"].append({**keys, **answer})
        summary = summarise(events)
        for stage in summary.stages:
            for name, fig in stage.figures.items():
                tables["figures"].append({**keys, "stage": stage.stage, "figure": name,
                                          **fig.model_dump(exclude={"meaning"})})
        for name, profile in summary.profiles.items():
            tables["profiles"] += [{**keys, "profile": name, "stage": st.stage, "key": key, "value": value}
                                   for st in profile.stages for key, value in st.values.items()]
    return {name: pd.DataFrame(rows) for name, rows in tables.items()}


def _answer(e: Event) -> dict | None:
    """One scored measurement: a judged score, or an answer its instrument scored (`key`: its
    dimension, scenario or pair; `value`: endorses, took action1, preferred the pair's first...)."""
    row = {"stage": e.stage, "score": None, "accepting": None, "outcome": None, "key": None, "value": None}
    if isinstance(e, Verdict):  # one row per judge sample; a rubric of several dimensions gives a column each
        return {**row, "instrument": e.instrument, "id": e.answer_id, "valid": e.valid, "score": e.score,
                "judge_sample": e.judge_sample, "judge": e.judge, "self_graded": e.self_graded,
                **{f"scores.{d}": v for d, v in e.scores.items()}}
    found = BY_EVENT[type(e)].answer_row(e) if type(e) in BY_EVENT else None
    return None if found is None else {**row, **{k: _number(v) if k in NUMBERS else v for k, v in found.items()}}


NUMBERS = ("value", "accepting")  # an outcome (1 or 0) or, scored by probability, its probability: one column type


def _number(value: object) -> object:
    return float(value) if isinstance(value, (bool, int, float)) else value


def export(run_dirs: list[Path], fmt: str, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tidy_tables(run_dirs).items():
        path = out_dir / f"{name}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
        written.append(path)
    return written
