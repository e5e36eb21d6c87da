"""Sweeps: the jobs of a Hydra multirun (`simulate -m ...`), recorded in the sweep folder.

Hydra's launchers run the jobs (one after the other, in joblib processes, on SLURM or Ray);
this callback appends one line per finished job to `<hydra.sweep.dir>/index.jsonl` — its
overrides, outcome, run folder and error — from whichever process ran it. Resuming a sweep
(`resume=true`, same `hydra.sweep.dir`) appends again: a job's last line is its latest outcome.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

INDEX_FILE = "index.jsonl"


@dataclass(frozen=True)
class JobOutcome:
    """What a job did: completed, resumed, skipped (it had completed before) or failed (with why).
    A failed job returns this rather than raising, so that Hydra goes on with the others."""

    status: str
    error: str | None = None


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


class SweepIndex(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            append_line(Path(config.hydra.sweep.dir) / INDEX_FILE, job_line(config, job_return))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's outcome in a few lines: how many jobs ended how, and every failure's error;
        the exit status is non-zero if any job failed."""
        jobs = read_index(Path(config.hydra.sweep.dir))
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
