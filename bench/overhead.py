"""Orchestration overhead per model call: graph + logging + memory, with a model that answers
instantly (the scripted test model). Goal: under 5 ms per call, median.

    python -m bench.overhead [STAGES] [SAMPLES]

Prints the per-call overhead (median, p95) next to a bare `ainvoke` of the same model,
measured in the same process, and their ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from simulator.log import read_events
from tests.conftest import run_scripted
from tests.scripted_model import ScriptedChatModel


def bare_call_seconds(calls: int) -> list[float]:
    model = ScriptedChatModel()
    messages = [{"role": "user", "content": "Would you accept being shut down?"}]

    async def timed() -> list[float]:
        out = []
        for _ in range(calls):
            started = time.perf_counter()
            await model.ainvoke(messages, temperature=0.8, max_tokens=96, seed=1)
            out.append(time.perf_counter() - started)
        return out

    return asyncio.run(timed())


def per_call_overhead(run_dir: Path) -> tuple[list[float], float, int]:
    """Gaps between consecutive model calls' log times, minus the later call's model time."""
    events = read_events(run_dir)
    calls = [e for e in events if e.type == "model_call"]
    gaps = [(b.time - a.time).total_seconds() - b.latency_s for a, b in zip(calls, calls[1:])]
    wall = (events[-1].time - events[0].time).total_seconds()
    return gaps, wall, len(calls)


def main(stages: int = 5, samples: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        # One call in flight, as with the embedded model, so the gaps between calls are
        # pure orchestration time.
        run_scripted(Path(tmp) / "run", f"schedule.stages={stages}", f"probes.samples={samples}",
                     max_inflight=1)
        total = time.perf_counter() - started
        gaps, wall, n = per_call_overhead(Path(tmp) / "run")
    bare = bare_call_seconds(n)
    q = statistics.quantiles(gaps, n=20)
    median, p95, bare_median = statistics.median(gaps), q[18], statistics.median(bare)
    print(f"run: {stages} stages x {samples} samples, {n} model calls one at a time, {wall:.2f} s logged "
          f"({total:.2f} s with set-up)")
    print(f"overhead per model call: median {median * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms "
          f"(goal: median < 5 ms)")
    print(f"bare scripted ainvoke:   median {bare_median * 1e3:.2f} ms")
    print(f"ratio overhead/bare call (median): {median / bare_median:.1f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
