"""Sweeps: the jobs of a Hydra multirun (`simulate -m ...`), recorded in the sweep folder.

Hydra's launchers run the jobs (one after the other, in joblib processes, on SLURM or Ray);
this callback appends one line per finished job to `<hydra.sweep.dir>/index.jsonl` — its
overrides, outcome, run folder and error — from whichever process ran it, and prints how many
of the sweep's jobs are done. Resuming a sweep (`resume=true`, same `hydra.sweep.dir`) appends
again: a job's last line is its latest outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # its grid: how many jobs a sweep runs
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

INDEX_FILE = "index.jsonl"
MULTIRUN_FILE = "multirun.yaml"  # the sweep's own config, which Hydra's basic sweeper writes before any job


@dataclass(frozen=True)
class JobOutcome:
    """What a job did: completed, resumed, skipped (it had completed before), failed (with why) or planned (plan=true:
    its bill, `planned`: calls, exact, prompt_tokens, completion_tokens). A failed job returns this rather than
    raising, so that Hydra goes on with the others."""

    status: str
    error: str | None = None
    planned: dict[str, Any] | None = None


def job_line(config: DictConfig, job_return: JobReturn) -> dict[str, Any]:
    if job_return.status == JobStatus.COMPLETED:
        outcome = job_return.return_value
    else:  # an unexpected exception (reading return_value would re-raise it)
        outcome = JobOutcome("failed", f"{type(job_return._return_value).__name__}: {job_return._return_value}")
    return {"job": config.hydra.job.num, "overrides": list(config.hydra.overrides.task), "status": outcome.status,
            "run_dir": config.hydra.runtime.output_dir, "error": outcome.error,
            "time": datetime.now(timezone.utc).isoformat()}


def append_line(path: Path, record: dict[str, Any]) -> None:
    """One write of one line with O_APPEND, so parallel jobs' lines never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def read_index(sweep_dir: Path) -> dict[int, dict[str, Any]]:
    """Each job's latest line."""
    path = Path(sweep_dir) / INDEX_FILE
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return {line["job"]: line for line in lines}


def planned_jobs(sweep_dir: Path) -> int | None:
    """How many jobs the sweep in `sweep_dir` launches, from its multirun.yaml: the product of the lengths of its
    sweeps (`hydra.sweeper.params`, then the command line's); None where that cannot be read (another sweeper)."""
    try:
        sweep = OmegaConf.load(Path(sweep_dir) / MULTIRUN_FILE).hydra
        params = sweep.sweeper.get("params") or {}
        given = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]
                                                         + list(sweep.overrides.task))
        return sum(len(batch) for batch in BasicSweeper.split_arguments(given, None))
    except Exception:  # a progress line is not worth failing a job for
        return None


def _planned(job_return: JobReturn) -> dict[str, Any] | None:
    value = job_return._return_value if job_return.status == JobStatus.COMPLETED else None
    return value.planned if isinstance(value, JobOutcome) and value.status == "planned" else None


class SweepIndex(Callback):
    """Under plan=true a job writes no line (it ran nothing): the jobs' bills are added up instead, and the sweep's
    total printed at its end, where the jobs ran in this process (the basic launcher; a parallel launcher's jobs
    print their own)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = datetime.now(timezone.utc)  # jobs done are those ended since (a resumed sweep's too)
        self.bills: list[dict[str, Any]] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if (planned := _planned(job_return)) is not None:
            if hasattr(self, "bills"):
                self.bills.append(planned)
            return
        if config.hydra.mode == RunMode.MULTIRUN:
            sweep_dir = Path(config.hydra.sweep.dir)
            append_line(sweep_dir / INDEX_FILE, job_line(config, job_return))
            started = getattr(self, "started", None)  # set in the launching process, carried to a job's own
            done = [line for line in read_index(sweep_dir).values()
                    if started is None or datetime.fromisoformat(line["time"]) >= started]
            failed = sum(line["status"] == "failed" for line in done)
            total = planned_jobs(sweep_dir)
            print(f"sweep: {len(done)}{f' of {total}' if total else ''} jobs done"
                  + (f" ({failed} failed)" if failed else ""), flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's outcome in a few lines: how many jobs ended how, and every failure's error;
        the exit status is non-zero if any job failed. A sweep of plans prints their total instead, and removes the
        sweep folder if Hydra's multirun.yaml is all it holds."""
        sweep_dir = Path(config.hydra.sweep.dir)
        bills = getattr(self, "bills", [])
        if bills:
            calls = sum(b["calls"] for b in bills)
            approx = "" if all(b["exact"] for b in bills) else "≈"
            print(f"sweep plan: {len(bills)} jobs, {approx}{calls:,} model calls, "
                  f"≈{sum(b['prompt_tokens'] for b in bills):,} prompt tokens, "
                  f"≤{sum(b['completion_tokens'] for b in bills):,} completion tokens "
                  "(each job's table says what each figure estimates)")
            if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {MULTIRUN_FILE}:
                shutil.rmtree(sweep_dir)
            if not (sweep_dir / INDEX_FILE).is_file():
                return
        jobs = read_index(sweep_dir)
        counts: dict[str, int] = {}
        for line in jobs.values():
            counts[line["status"]] = counts.get(line["status"], 0) + 1
        print(f"sweep {config.hydra.sweep.dir}: {len(jobs)} jobs; "
              + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        shared = set.intersection(*(set(line["overrides"]) for line in jobs.values())) if jobs else set()
        for line in jobs.values():
            if line["status"] == "failed":
                varied = " ".join(o for o in line["overrides"] if o not in shared)
                first = (line["error"] or "").strip().splitlines()[:1]
                print(f"  job {line['job']} failed ({varied}): {first[0] if first else ''}")
        if counts.get("failed"):
            sys.exit(f"error: {counts['failed']} of {len(jobs)} jobs failed; see {INDEX_FILE} in the sweep folder\n"
                     "  fix: correct the cause, then rerun the same command with resume=true "
                     "(completed jobs are skipped)")
