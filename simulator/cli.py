"""Console scripts: `simulate` (the Hydra app) and `trajectories` (reads run folders)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simulator.config import PROJECT_ROOT, register_configs
from simulator.errors import SimulatorError
from simulator.log import EVENTS_FILE, read_events
from simulator.metrics import format_table, summarise
from simulator.run import execute, prepare

register_configs()
HYDRA_ONLY = {".hydra", "simulate.log"}  # what Hydra writes before the task function runs


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="simulate")
def simulate(cfg: DictConfig) -> None:
    """Run one persona through one schedule; prints the per-stage table and the run folder."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if (run_dir / EVENTS_FILE).exists():
        sys.exit(f"error: hydra.run.dir={run_dir}: this folder already holds a run\n"
                 "  fix: choose a new hydra.run.dir (or leave it out for a fresh folder under runs/)")
    try:
        prepared = prepare(OmegaConf.to_object(cfg))
    except (SimulatorError, OmegaConfBaseException) as err:
        _discard_if_unused(run_dir)
        sys.exit(str(err) if isinstance(err, SimulatorError) else f"error: config: {err}")
    try:
        summary = asyncio.run(execute(prepared, run_dir))
    except Exception as err:  # the log already holds the error and the failed status
        sys.exit(f"error: the run stopped: {type(err).__name__}: {err}\n"
                 f"  its log, memory and checkpoint are kept in {run_dir}")
    print(format_table(summary))
    print(f"\nrun folder: {run_dir}")


def _discard_if_unused(run_dir: Path) -> None:
    """Bad input leaves nothing in runs/: remove the folder if Hydra's files are all it holds."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY:
        shutil.rmtree(run_dir)


def trajectories(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trajectories", description="Read run folders.")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="the per-stage table of a run")
    show.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    if not (args.run_dir / "events.jsonl").is_file():
        sys.exit(f"error: {args.run_dir}: no events.jsonl here\n  fix: give a run folder (runs/...)")
    summary = summarise(read_events(args.run_dir))
    print(f"run {summary.run_id}  persona {summary.persona}  status {summary.status}\n")
    print(format_table(summary))
