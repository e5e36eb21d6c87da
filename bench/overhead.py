"""Orchestration overhead per model call: graph + logging + memory, with a model that answers
instantly (the scripted test model). Goal: under 5 ms per call, median.

    python -m bench.overhead [STAGES] [SAMPLES]

Prints the per-call overhead (median, p95) next to a bare `ainvoke` of the same model,
measured in the same process, and their ratio; then the cost of a tool call through the graph
(the arguments' model call logged -> the tool run in its sandbox -> its tool_call event logged),
for an in-process tool (calculator) and for code run in the sandboxed subprocess (run_python).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from simulator.trajectory import read_events
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


def tool_call_seconds(tool: str, arguments: dict, root: Path) -> list[float]:
    """Per tool call: from the logged model call that gave its arguments to its logged result."""
    model = ScriptedChatModel(choose=lambda prompt, values: tool if tool in values else values[0],
                              arguments=lambda prompt, schema: arguments)
    run_scripted(root / tool, "schedule=capability", "~probes.open.shutdown_open", "probes.shutdown_mc=null",
                 "probes.shutdown_behaviour=null", "probes.endorsement=null", "probes.moral_choice=null",
                 "probes.utilities=null", "probes.core_values=null", "judge.spec_rubric=null",
                 "schedule.budgets=[{steps: 20}]", "schedule.unlocks=[[calculator,run_python]]",
                 model=model, max_inflight=1)
    events = read_events(root / tool)
    return [(b.time - a.time).total_seconds() for a, b in zip(events, events[1:])
            if b.type == "tool_call" and a.type == "model_call" and b.command == tool]


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
    with tempfile.TemporaryDirectory() as tmp:
        for tool, arguments in (("calculator", {"expression": "(17 + 25) * 3"}),
                                ("run_python", {"code": "print(sum(range(10)))"})):
            seconds = tool_call_seconds(tool, arguments, Path(tmp))
            q = statistics.quantiles(seconds, n=20)
            print(f"tool call through the graph, {tool}: median {statistics.median(seconds) * 1e3:.2f} ms, "
                  f"p95 {q[18] * 1e3:.2f} ms over {len(seconds)} calls")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
