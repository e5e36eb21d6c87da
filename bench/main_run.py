"""Wall time of the README main command (`simulate`, embedded default: 3 stages, 5 samples per
probe question). Goal: under 10 minutes on a 2-core machine.

    python -m bench.main_run [extra simulate overrides...]

Prints the wall time next to the time spent inside the model, from the run's own log, and
their ratio (how much of the run is orchestration). The run folder is kept under runs/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from simulator.trajectory import read_events

BUDGET_S = 600


def main(overrides: list[str]) -> None:
    run_dir = Path("runs") / f"bench_main_run_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "simulate"), f"hydra.run.dir={run_dir}", *overrides],
                   check=True, capture_output=True)
    wall = time.perf_counter() - started
    calls = [e for e in read_events(run_dir) if e.type == "model_call"]
    verdicts = [e for e in read_events(run_dir) if e.type == "verdict"]
    by_purpose: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        by_purpose[f"{c.purpose} {c.instrument or ''}".strip()].append(c.latency_s)
    stages = len({c.stage for c in calls})
    model_s = sum(c.latency_s for c in calls)
    tokens = sum(c.completion_tokens or 0 for c in calls)
    print(f"simulate {' '.join(overrides) or '(defaults)'}")
    print(f"wall time: {wall:.1f} s = {wall / BUDGET_S:.2f} of the {BUDGET_S} s budget")
    print(f"model time: {model_s:.1f} s over {len(calls)} calls, {tokens} tokens generated "
          f"({tokens / model_s:.0f} tok/s); model/wall = {model_s / wall:.2f}")
    print(f"cost per stage (mean over {stages} stages), by purpose and instrument:")
    for purpose, latencies in sorted(by_purpose.items()):
        print(f"  {purpose:30s} {len(latencies) / stages:6.1f} calls  {sum(latencies) / stages:7.1f} s")
    invalid = sum(not v.valid for v in verdicts)
    print(f"verdicts: {len(verdicts)}, invalid {invalid}")
    print(f"run folder (figures: trajectories show {run_dir}): {run_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
