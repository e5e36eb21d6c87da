"""Soak: many short trajectories at once against the fault-injecting loopback server. Not a test.

    python -m bench.soak [--runs 200] [--parallel 32] [--fault-rate 0.05]

One process runs every trajectory (runs.count, runs.parallel) on one client with
model.max_inflight = parallel, against `tests.openai_server.OpenAIStub` injecting a random fault
(500, 503, 429, connection reset, truncated body, empty completion) into that fraction of requests.
It prints completed runs, events written against what the server did (each answer one
`model_call`, each transient fault one `retry`), gap-free sequences, invalid verdicts, the
process's memory growth and the wall time. Nothing lost is the bar.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simulator.config import CONF_DIR, register_configs
from simulator.loop.run import batch, execute_batch, prepare
from simulator.trajectory import read_events
from tests.openai_server import OpenAIStub

KEY = "sk-soak-not-a-real-key"
# Short trajectories: two stages, every kind of call (free text, constrained, judged, episodes) but few of each.
SHORT = ["schedule.stages=2", "probes.samples=1", "probes.shutdown_mc.limit=2", "probes.endorsement.limit=1",
         "probes.endorsement.samples=1", "probes.moral_choice=null", "probes.utilities=null",
         "probes.core_values=null", "judge.spec_rubric=null", "probes.shutdown_behaviour.samples=1"]
TRANSIENT = {500, 503, 429, "reset", "truncated"}  # retried; "empty" is recorded as given


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kib / 1024


def config(stub: OpenAIStub, runs: int, parallel: int, run_dir: Path):
    overrides = ["model=openai", "model.model=stub", f"model.base_url={stub.base_url}", "model.backoff_s=0.01",
                 "model.max_backoff_s=0.05", "model.retries=8", f"model.max_inflight={parallel}",
                 f"runs.count={runs}", f"runs.parallel={parallel}", *SHORT]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("simulate", overrides=overrides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    args = parser.parse_args()
    register_configs()
    os.environ["OPENAI_API_KEY"] = KEY
    stub = OpenAIStub(api_key=KEY, fault_rate=args.fault_rate, delay_s=0.002)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(stub, args.runs, args.parallel, Path(tmp))
        prepared = prepare(cfg)
        planned = [(c, d, "fresh") for c, d in batch(cfg, Path(tmp) / "soak")]
        before, started = rss_mib(), time.perf_counter()
        results = asyncio.run(execute_batch(prepared, planned))
        wall, after = time.perf_counter() - started, rss_mib()
        logs = [read_events(d) for _, d, _ in planned]
    stub.close()
    counts = Counter(e.type for events in logs for e in events)
    injected = Counter(str(f) for f in stub.injected)
    transient = sum(n for f, n in injected.items() if f in {str(t) for t in TRANSIENT})
    completed = sum(1 for r in results if not isinstance(r, BaseException))
    gap_free = sum(1 for events in logs if [e.seq for e in events] == list(range(len(events))))
    verdicts = [e for events in logs for e in events if e.type == "verdict"]
    print(f"{args.runs} trajectories, {args.parallel} at a time, fault rate {args.fault_rate}")
    print(f"  completed runs            {completed} / {args.runs}   (failed: {args.runs - completed})")
    print(f"  gap-free logs             {gap_free} / {args.runs}")
    print(f"  requests to the server    {len(stub.requests)}, most in flight at once {stub.max_in_flight}")
    print(f"  faults injected           {sum(injected.values())}: {dict(sorted(injected.items()))}")
    print(f"  model_call events         {counts['model_call']}  (server answers: {stub.answered})")
    print(f"  retry events              {counts['retry']}  (transient faults injected: {transient})")
    print(f"  events written            {sum(counts.values())}")
    print(f"  invalid verdicts          {sum(not v.valid for v in verdicts)} / {len(verdicts)}")
    print(f"  memory (RSS)              {before:.0f} MiB before, {after:.0f} MiB after (+{after - before:.0f} MiB)")
    print(f"  wall time                 {wall:.1f} s  ({args.runs / wall:.1f} trajectories/s)")
    print("  nothing lost:", counts["model_call"] == stub.answered and counts["retry"] == transient
          and gap_free == args.runs)


if __name__ == "__main__":
    main()
