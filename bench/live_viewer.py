"""The live viewer on a run in progress: how long a refresh takes once the log grew, with the
viewer's caches (whole-instrument figures and charts reused where their events did not change)
against a cold render of the same log, side by side in one process.

    python -m bench.live_viewer

A scripted run (3 stages, 2 samples) is cut before its last stage's moral-choice answers; the
viewer renders it, then the log grows by those answers and the viewer renders it again.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from simulator.read.viewer.live import RunsViewer
from simulator.trajectory import EVENTS_FILE
from tests.conftest import run_scripted


def render(viewer: RunsViewer, run: Path) -> float:
    started = time.perf_counter()
    viewer.run_data(run.name, run)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        done = run_scripted(Path(tmp) / "done", "schedule.stages=3", "probes.samples=2")
        lines = (done / EVENTS_FILE).read_text().splitlines(keepends=True)
        last = max(i for i, line in enumerate(lines) if '"stage_started"' in line)
        first_moral = next(i for i in range(last, len(lines)) if '"moral_choice_answer"' in lines[i])
        after_moral = next(i for i in range(first_moral, len(lines)) if '"preference_answer"' in lines[i])
        warm, cold = [], []
        for _ in range(3):
            root = Path(tmp) / "root"
            shutil.rmtree(root, ignore_errors=True)
            run = root / "live"
            shutil.copytree(done, run, ignore=shutil.ignore_patterns("summary.json"))
            (run / EVENTS_FILE).write_text("".join(lines[:first_moral]))
            viewer = RunsViewer(root)
            render(viewer, run)
            with (run / EVENTS_FILE).open("a") as log:
                log.write("".join(lines[first_moral:after_moral]))
            warm.append(render(viewer, run))
            cold.append(render(RunsViewer(root), run))
        w, c = statistics.median(warm), statistics.median(cold)
        print(f"log grew by {after_moral - first_moral} events to {after_moral}")
        print(f"refresh with the viewer's caches (median of 3): {w:.2f} s")
        print(f"cold render of the same log (median of 3):     {c:.2f} s   ratio {w / c:.2f}")


if __name__ == "__main__":
    main()
