#!/usr/bin/env bash
# Benchmark 2 against a real `vllm serve` on a GPU machine: does the simulator keep vLLM as busy as
# a plain client sending the same requests? Needs this project installed with vLLM:
#   python -m venv .venv && .venv/bin/pip install -e '.[vllm]' && bash bench/gpu_vllm.sh [MODEL]
# It starts `vllm serve MODEL` (managed, logs in a temporary folder), runs C short trajectories at
# once for each C, replays their requests with a plain asyncio client, and prints one row per C:
# calls, simulator tokens/s, plain-client tokens/s, ratio (goal >= 0.90). vLLM batches what it holds,
# so unlike llama.cpp's server throughput should grow with C.
set -euo pipefail
MODEL="${1:-Qwen/Qwen2.5-0.5B-Instruct}"
exec "$(dirname "$0")/../.venv/bin/python" -m bench.saturation --vllm "$MODEL" --concurrency 1 4 16 64
