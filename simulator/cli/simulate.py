"""The `simulate` console script: the Hydra app that runs personas (`trajectories` reads their folders)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import cast

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simulator.config import RunConfig, register_configs
from simulator.errors import SimulatorError
from simulator.instruments import tokens
from simulator.loop.progress import Display, bill, bill_rows, plan
from simulator.loop.run import batch, check, execute_batch, prepare, start_mode
from simulator.measure.summary import Summary, format_table
from simulator.models.backends import model_kind
from simulator.models.server import describe_exit, serving
from simulator.trajectory.sweep import JobOutcome, planned_jobs

register_configs()
HYDRA_ONLY = {".hydra", "simulate.log"}  # what Hydra writes before the task function runs
VERBOSE = ("-v", "--verbose")  # simulate -v: verbose=true (Hydra's own flags leave -v free)
PLAN = "--plan"  # simulate --plan: plan=true, the bill without the run


def simulate() -> None:
    """The console script: `-v` (`--verbose`) stands for `verbose=true`, the line per model call on the
    terminal too, and `--plan` for `plan=true`, the bill instead of the run; everything else goes to the Hydra
    app as given. The overrides they stand for go last: argparse takes overrides only in one run, so one put where
    the flag was would cut off those after a flag (`simulate -v -m seed=0,1`)."""
    sugar = {**dict.fromkeys(VERBOSE, "verbose=true"), PLAN: "plan=true"}
    given = sys.argv[1:]
    stands_for = list(dict.fromkeys(sugar[arg] for arg in given if arg in sugar))
    sys.argv[1:] = [arg for arg in given if arg not in sugar] + stands_for
    app()


# The shipped tree, relative to this module (Hydra makes it pkg://simulator.conf), so an installed wheel finds its own;
# a conf/ in the working folder comes after it (`WorkingFolderConf`).
@hydra.main(version_base="1.3", config_path="../conf", config_name="simulate")
def app(cfg: DictConfig) -> JobOutcome:
    """Run one persona through one schedule (or runs.count seeds of it), showing its progress
    (`simulator.loop.progress`); prints the per-stage table (or one line per trajectory) and the
    run folder. Returns the job's outcome, which a sweep's index records."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_cfg = cast(RunConfig, OmegaConf.to_object(cfg))
        if run_cfg.plan:
            return _plan(run_cfg, run_dir)
        display = Display(_progress(run_cfg.progress), run_cfg.verbose, job=_job())
        planned = [(c, d, start_mode(d, c)) for c, d in batch(run_cfg, run_dir)]
        if all(mode == "skip" for *_, mode in planned):
            print(f"already completed, skipped: {run_dir}")
            return JobOutcome("skipped")
    except (SimulatorError, OmegaConfBaseException) as err:
        _discard_if_unused(run_dir)
        return _fail(str(err) if isinstance(err, SimulatorError) else f"error: config: {err}")
    with ExitStack() as stack:
        stack.enter_context(display)  # from here the terminal shows progress, and no line per call
        try:
            servers = stack.enter_context(serving({"model": run_cfg.model, "judge.model": run_cfg.judge.model},
                                                  run_dir))
            prepared = prepare(run_cfg)
        except SimulatorError as err:
            _discard_if_unused(run_dir)
            return _fail(str(err))
        display.model_kind = prepared.persona_model.kind
        results = asyncio.run(execute_batch(prepared, planned, display.observe))
        failures = [_stopped(d, r) + describe_exit(servers) for (_, d, _), r in zip(planned, results)
                    if isinstance(r, BaseException)]
    for (_, d, mode), result in zip(planned, results):
        if run_cfg.runs.count == 1 and isinstance(result, Summary):
            print(format_table(result))
        elif run_cfg.runs.count > 1:
            print(f"{d.name}: {'failed' if isinstance(result, BaseException) else mode}")
    if failures:
        return _fail("\n".join(failures))
    print(f"\nrun folder: {run_dir}")
    return JobOutcome("resumed" if any(mode == "resume" for *_, mode in planned) else "completed")


def _plan(cfg: RunConfig, run_dir: Path) -> JobOutcome:
    """plan=true: the config checked as a run checks it (`check`, and the run-count options), then the bill
    printed: no model is built, no server started, and the folder Hydra made for the job is removed again."""
    try:
        batch(cfg, run_dir)
        check(cfg)
        kind = model_kind(cfg.model)
        with tokens.counting(cfg.model) as counted_by:
            steps = plan(cfg, kind)
            job = _job()
            title = f"{job + ': ' if job else ''}the plan of this run: no model is loaded or called"
            print(bill(cfg, steps, counted_by, title) + "\n", flush=True)
    finally:
        _discard_if_unused(run_dir)
    total = bill_rows(steps)[2]
    return JobOutcome("planned", planned={"calls": total.calls * cfg.runs.count, "exact": total.exact,
                                          "prompt_tokens": total.prompt_tokens * cfg.runs.count,
                                          "completion_tokens": total.completion_tokens * cfg.runs.count})


def _progress(mode: str) -> str:
    """`auto` is plain in the jobs of a parallel launcher (joblib, SLURM, Ray): several live displays would
    draw over each other on one terminal. The basic launcher runs its jobs one after the other."""
    launcher = str(HydraConfig.get().launcher.get("_target_", ""))
    parallel = HydraConfig.get().mode == RunMode.MULTIRUN and not launcher.endswith("BasicLauncher")
    return "plain" if mode == "auto" and parallel else mode


def _job() -> str:
    """In a sweep, which job this is of how many ("job 2 of 4"); "" outside one."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    total = planned_jobs(Path(hydra_cfg.sweep.dir))
    return f"job {hydra_cfg.job.num + 1}" + (f" of {total}" if total else "")


def _stopped(run_dir: Path, err: BaseException) -> str:
    if isinstance(err, SimulatorError):  # e.g. a replayed call the cache does not hold: the message says the fix
        return f"{err}\n  the run stopped; its log is kept in {run_dir}"
    return (f"error: the run stopped: {type(err).__name__}: {err}\n"
            f"  its log, memory and checkpoint are kept in {run_dir}; add resume=true to continue it")


def _fail(message: str) -> JobOutcome:
    """One clear message and a non-zero exit; in a sweep, a failed job (exiting would end them all)."""
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(message)
    print(message, file=sys.stderr)
    return JobOutcome("failed", message)


def _discard_if_unused(run_dir: Path) -> None:
    """Bad input leaves nothing in runs/: remove the folder if Hydra's files are all it holds."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY:
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    simulate()
