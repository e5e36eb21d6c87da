"""Reading a big run: `trajectories show` (goal: under 3 s) and `trajectories report` (goal: under
10 s) on a run folder of 100,000 events, timed as a researcher runs them (a fresh process each).

    python -m bench.viewer [EVENTS]

The folder is made from a real scripted run: each stage's events are repeated with fresh answer
and episode ids until the log holds EVENTS events (a big run: many samples per stage). Its
summary.json is written as a finished run's would be; `show` of a run still in progress has to
recompute it, timed too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.measure.summary import SUMMARY_FILE, write_summary
from simulator.trajectory import EVENTS_FILE
from tests.conftest import run_scripted

TRAJECTORIES = Path(sys.executable).parent / "trajectories"
FIXED = ("run_started", "stage_started", "run_finished")  # once per run or stage, never repeated
IDS = ("answer_id", "episode_id")


def grow(run_dir: Path, events: int) -> int:
    """Repeats each stage's events (fresh ids) until the log holds about `events` lines."""
    lines = [json.loads(line) for line in (run_dir / EVENTS_FILE).read_text().splitlines()]
    repeatable = [e for e in lines if e["type"] not in FIXED]
    copies = max(1, round((events - (len(lines) - len(repeatable))) / len(repeatable)))
    out = []
    for e in lines:
        if e["type"] in FIXED:
            out.append(e)
            continue
        for k in range(copies):
            out.append({**e, **{key: f"{e[key]}~{k}" for key in IDS if e.get(key)}})
    by_stage = sorted(out, key=lambda e: (-1 if e["type"] == "run_started" else 1 << 30 if e["type"] == "run_finished"
                                          else e["stage"]))
    with (run_dir / EVENTS_FILE).open("w") as f:
        for seq, e in enumerate(by_stage):
            f.write(json.dumps({**e, "seq": seq}, separators=(",", ":")) + "\n")  # as the log writes it
    return len(by_stage)


def timed(*args: str, repeats: int = 3) -> float:
    """Median wall time of a whole command (interpreter start and imports included)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(TRAJECTORIES), *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        run = run_scripted(Path(tmp) / "big", "schedule.stages=3", "probes.samples=2")
        n = grow(run, target)
        started = time.perf_counter()
        write_summary(run)
        summarising = time.perf_counter() - started
        size = (run / EVENTS_FILE).stat().st_size / 2**20
        print(f"run folder: {n} events, events.jsonl {size:.0f} MiB; computing its summary took {summarising:.1f} s")
        show = timed("show", str(run))
        report = timed("report", str(run), "-o", str(Path(tmp) / "report.html"))
        page = (Path(tmp) / "report.html").stat().st_size / 2**20
        (run / SUMMARY_FILE).unlink()
        in_progress = timed("show", str(run), repeats=1)
        print(f"show (median of 3):   {show:5.2f} s   goal 3 s   ratio to goal {show / 3:.2f}")
        print(f"report (median of 3): {report:5.2f} s   goal 10 s  ratio to goal {report / 10:.2f}  "
              f"(page {page:.0f} MiB)")
        print(f"show without summary.json (a run in progress: recomputed from the log): {in_progress:.2f} s")


if __name__ == "__main__":
    main()
