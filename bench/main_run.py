"""Wall time of the README main command (`simulate`, embedded default: 3 stages, every instrument).
Goal: under 10 minutes on a 2-core machine.

    python -m bench.main_run [extra simulate overrides...]
    python -m bench.main_run --compare [--reduced] [extra simulate overrides...]

Prints the wall time next to the time spent inside the model, from the run's own log, and
their ratio (how much of the run is orchestration), with the model calls per stage by purpose and
instrument, the threads llama.cpp computed with and the machine's load average before and after.
The run folders are kept under runs/.

--compare runs the command twice, one after the other: first as before (`model.n_threads=2`,
what the embedded model used whatever else kept the cores busy), then with today's default
(`model.n_threads=null`: the cores other processes leave free), and prints both rows and their
ratio. --reduced runs a smaller command (`REDUCED`, printed), for a machine where the full one
twice would take too long; the same for both rows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from simulator.trajectory import read_events

BUDGET_S = 600
BEFORE = ["model.n_threads=2"]  # the embedded model's default until n_threads=null
# One stage, every instrument, fewer items and samples.
REDUCED = ["schedule.stages=1", "probes.samples=1", "probes.shutdown_mc.limit=4", "probes.endorsement.limit=2",
           "probes.endorsement.samples=1", "probes.moral_choice.limit=2", "probes.utilities.pairs=6",
           "probes.utilities.samples=1", "probes.core_values.samples=1"]
THREADS = re.compile(r"embedded model: (\d+) thread")


@dataclass
class Measured:
    label: str
    overrides: list[str]
    wall_s: float
    calls: int
    model_s: float
    tokens: int
    stages: int
    by_purpose: dict[str, list[float]]
    threads: list[int]
    load: tuple[float, float]
    invalid: int
    verdicts: int
    run_dir: Path


def measure(label: str, overrides: list[str]) -> Measured:
    run_dir = Path("runs") / f"bench_main_run_{time.strftime('%Y-%m-%d_%H-%M-%S')}_{label.replace(' ', '_')}"
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    # sys.executable -m, not the console script: PYTHONPATH (a checkout beside the installed one) is honoured
    subprocess.run([sys.executable, "-m", "simulator.cli.simulate", f"hydra.run.dir={run_dir}", *overrides],
                   check=True, capture_output=True)
    wall = time.perf_counter() - started
    events = read_events(run_dir)
    calls = [e for e in events if e.type == "model_call"]
    verdicts = [e for e in events if e.type == "verdict"]
    by_purpose: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        by_purpose[f"{c.purpose} {c.instrument or ''}".strip()].append(c.latency_s)
    log = (run_dir / "simulate.log").read_text(encoding="utf-8") if (run_dir / "simulate.log").exists() else ""
    return Measured(label, overrides, wall, len(calls), sum(c.latency_s for c in calls),
                    sum(c.completion_tokens or 0 for c in calls), len({c.stage for c in calls}) or 1, by_purpose,
                    [int(n) for n in THREADS.findall(log)], (load_before, os.getloadavg()[0]),
                    sum(not v.valid for v in verdicts), len(verdicts), run_dir)


def report(m: Measured) -> None:
    print(f"{m.label}: simulate {' '.join(m.overrides) or '(defaults)'}")
    print(f"  wall time: {m.wall_s:.1f} s = {m.wall_s / BUDGET_S:.2f} of the {BUDGET_S} s budget; llama.cpp threads "
          f"{', '.join(map(str, m.threads)) or '?'}; load average {m.load[0]:.1f} before, {m.load[1]:.1f} after")
    print(f"  model time: {m.model_s:.1f} s over {m.calls} calls, {m.tokens} tokens generated "
          f"({m.tokens / max(m.model_s, 1e-9):.0f} tok/s); model/wall = {m.model_s / m.wall_s:.2f}")
    print(f"  cost per stage (mean over {m.stages} stages), by purpose and instrument:")
    for purpose, latencies in sorted(m.by_purpose.items()):
        print(f"    {purpose:30s} {len(latencies) / m.stages:6.1f} calls  {sum(latencies) / m.stages:7.1f} s")
    print(f"  verdicts: {m.verdicts}, invalid {m.invalid}")
    print(f"  run folder (figures: trajectories show {m.run_dir}): {m.run_dir}")


def main(args: list[str]) -> None:
    compare, reduced = "--compare" in args, "--reduced" in args
    overrides = [a for a in args if a not in ("--compare", "--reduced")]
    if reduced:
        print(f"reduced command: {' '.join(REDUCED)}")
        overrides = REDUCED + overrides
    if not compare:
        report(measure("now", overrides))
        return
    before = measure("before", BEFORE + overrides)
    report(before)
    after = measure("after", overrides)
    report(after)
    print(f"after / before: wall {after.wall_s:.1f} / {before.wall_s:.1f} s = {after.wall_s / before.wall_s:.2f} "
          f"({before.wall_s / after.wall_s:.1f}x faster); model calls {after.calls} / {before.calls}; "
          f"model time {after.model_s:.1f} / {before.model_s:.1f} s")
    for purpose in sorted(before.by_purpose.keys() | after.by_purpose.keys()):
        b, a = before.by_purpose.get(purpose, []), after.by_purpose.get(purpose, [])
        print(f"    {purpose:30s} {len(b):4d} calls {sum(b):7.1f} s  ->  {len(a):4d} calls {sum(a):7.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
