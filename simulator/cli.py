"""Console scripts: `simulate` (the Hydra app) and `trajectories` (reads run folders)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from simulator.analysis import analyse, format_analysis
from simulator.compare import compare, format_comparison
from simulator.config import PROJECT_ROOT, register_configs
from simulator.errors import SimulatorError
from simulator.log import EVENTS_FILE
from simulator.metrics import Summary, format_table
from simulator.rescore import VERDICTS_DIR, rescore
from simulator.run import batch, execute_batch, prepare, start_mode
from simulator.server import describe_exit, serving
from simulator.sweep import Outcome
from simulator.tables import export as export_tables
from simulator.tables import find_runs, run_row
from simulator.terminal import Block, Table, emit, show_parts
from simulator.viewer.live import make_server
from simulator.viewer.report import write_report
from simulator.views import read_run

register_configs()
HYDRA_ONLY = {".hydra", "simulate.log"}  # what Hydra writes before the task function runs


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="simulate")
def simulate(cfg: DictConfig) -> Outcome:
    """Run one persona through one schedule (or runs.count seeds of it); prints the per-stage table
    (or one line per trajectory) and the run folder. Returns the job's outcome, which a sweep's
    index records."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_cfg = OmegaConf.to_object(cfg)
        planned = [(c, d, start_mode(d, c)) for c, d in batch(run_cfg, run_dir)]
        if all(mode == "skip" for *_, mode in planned):
            print(f"already completed, skipped: {run_dir}")
            return Outcome("skipped")
    except (SimulatorError, OmegaConfBaseException) as err:
        _discard_if_unused(run_dir)
        return _fail(str(err) if isinstance(err, SimulatorError) else f"error: config: {err}")
    with ExitStack() as stack:
        try:
            servers = stack.enter_context(serving({"model": run_cfg.model, "judge.model": run_cfg.judge.model},
                                                  run_dir))
            prepared = prepare(run_cfg)
        except SimulatorError as err:
            _discard_if_unused(run_dir)
            return _fail(str(err))
        results = asyncio.run(execute_batch(prepared, planned))
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
    return Outcome("resumed" if any(mode == "resume" for *_, mode in planned) else "completed")


def _stopped(run_dir: Path, err: BaseException) -> str:
    if isinstance(err, SimulatorError):  # e.g. a replayed call the cache does not hold: the message says the fix
        return f"{err}\n  the run stopped; its log is kept in {run_dir}"
    return (f"error: the run stopped: {type(err).__name__}: {err}\n"
            f"  its log, memory and checkpoint are kept in {run_dir}; add resume=true to continue it")


def _fail(message: str) -> Outcome:
    """One clear message and a non-zero exit; in a sweep, a failed job (exiting would end them all)."""
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(message)
    print(message, file=sys.stderr)
    return Outcome("failed", message)


def _discard_if_unused(run_dir: Path) -> None:
    """Bad input leaves nothing in runs/: remove the folder if Hydra's files are all it holds."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY:
        shutil.rmtree(run_dir)


def trajectories(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trajectories", description="Read run folders.")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="the per-stage table of a run, recomputed from its log")
    show.add_argument("run_dir", type=Path)
    show.add_argument("--verdicts", metavar="NAME", help="use the verdict set NAME (see rescore)")
    show.add_argument("--stage", type=int, metavar="K", help="only stage K")
    show.add_argument("--json", action="store_true", help="the whole view (figures, transcript, notes) as JSON")
    listing = commands.add_parser("list", help="one line per run under a folder")
    listing.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"))
    listing.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                         help="keep runs whose KEY (persona, schedule, model, seed, status) equals VALUE")
    listing.add_argument("--sort", default="started", help="column to sort by (default: started)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    side = commands.add_parser("compare", help="figures side by side across runs, or pooled by config key")
    side.add_argument("paths", type=Path, nargs="+", help="run folders, or folders of runs (a sweep)")
    side.add_argument("--by", action="append", default=[], metavar="KEY",
                      help="group runs by a config key (schedule, persona, seed, model.model_name, ...); repeatable")
    side.add_argument("--reps", type=int, default=1000, help="bootstrap resamples for pooled groups (default: 1000)")
    side.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    side.add_argument("--json", action="store_true", help="the comparison as one JSON object")
    export = commands.add_parser("export", help="tidy tables (events, answers, figures) for pandas")
    export.add_argument("run_dirs", type=Path, nargs="+")
    export.add_argument("--to", choices=["csv", "parquet"], default="csv")
    export.add_argument("-o", "--out", type=Path, default=Path("export"), help="folder to write into")
    report = commands.add_parser("report", help="a self-contained HTML report (and its charts as PNG files)")
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument("-o", "--out", type=Path, default=Path("report.html"), help="the HTML file to write")
    live = commands.add_parser("serve", help="the viewer over a live folder of runs, refreshing as they go")
    live.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"))
    live.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    live.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    again = commands.add_parser("rescore", help="judge a run's answers again, into a separate verdict set")
    again.add_argument("run_dir", type=Path)
    again.add_argument("overrides", nargs="*", help="judge overrides, e.g. judge=openai judge.model.model=NAME")
    again.add_argument("--name", default=time.strftime("%Y-%m-%d_%H-%M-%S"), help="the verdict set's name")
    analysis = commands.add_parser("analyse", help="effects of capability and reflection across a sweep's runs")
    analysis.add_argument("sweep_dir", type=Path)
    analysis.add_argument("--reps", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    analysis.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    analysis.add_argument("--json", action="store_true", help="the whole analysis as one JSON object")
    args = parser.parse_args(argv)
    if args.command == "analyse":
        return analyse_sweep(args.sweep_dir, args.reps, args.seed, args.json)
    if args.command == "compare":
        return compare_runs(args.paths, args.by, args.reps, args.seed, args.json)
    if args.command == "list":
        return list_runs(args.runs_dir, args.filter, args.sort, args.json)
    if args.command == "serve":
        return serve_runs(args.runs_dir, args.host, args.port)
    if args.command == "report":
        return report_runs(args.run_dirs, args.out)
    if args.command == "export":
        for path in export_tables(args.run_dirs, args.to, args.out):
            print(path)
        return
    if not (args.run_dir / EVENTS_FILE).is_file():
        sys.exit(f"error: {args.run_dir}: no {EVENTS_FILE} here\n  fix: give a run folder (runs/...)")
    try:
        if args.command == "rescore":
            summary, calls = rescore(args.run_dir, args.overrides, args.name)
            print(f"verdict set {args.run_dir / VERDICTS_DIR / args.name}: {calls} judge model calls\n")
            print(f"run {summary.run_id}  persona {summary.persona}  status {summary.status}\n")
            return print(format_table(summary))
        show_run(args.run_dir, args.stage, args.verdicts, args.json)
    except (SimulatorError, OmegaConfBaseException) as err:
        sys.exit(str(err) if isinstance(err, SimulatorError) else f"error: config: {err}")


def show_run(run_dir: Path, stage: int | None, verdict_set: str | None, as_json: bool) -> None:
    view = read_run(run_dir, verdict_set)
    for warning in view.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if stage is not None:
        view = view.at_stage(stage)
    if as_json:
        return print(view.model_dump_json(indent=1))
    emit(show_parts(view))


def report_runs(run_dirs: list[Path], out: Path) -> None:
    try:
        written = write_report(run_dirs, out)
    except SimulatorError as err:
        sys.exit(str(err))
    print(f"report: {written[0]}\ncharts ({len(written) - 1} PNG files): {written[0].with_name(out.stem + '_figures')}")


def serve_runs(root: Path, host: str, port: int) -> None:
    try:
        server = make_server(root, host, port)
    except (SimulatorError, OSError) as err:
        sys.exit(str(err) if isinstance(err, SimulatorError) else f"error: serve on {host}:{port}: {err}")
    print(f"serving {root} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def compare_runs(paths: list[Path], by: list[str], reps: int, seed: int, as_json: bool) -> None:
    try:
        comparison = compare(paths, by, reps, seed)
    except SimulatorError as err:
        sys.exit(str(err))
    if as_json:
        return print(comparison.model_dump_json(indent=1))
    header, rows, notes = format_comparison(comparison)
    emit([Table("figures per group and stage" if by else "figures per run and stage", header, rows), Block("", notes)])


def analyse_sweep(sweep_dir: Path, reps: int, seed: int, as_json: bool) -> None:
    try:
        result = analyse(sweep_dir, reps, seed)
    except SimulatorError as err:
        sys.exit(str(err))
    print(result.model_dump_json(indent=2) if as_json else format_analysis(result))


def list_runs(root: Path, filters: list[str], sort: str, as_json: bool) -> None:
    rows = []
    for run in find_runs(root):
        try:
            rows.append(run_row(run))
        except (ValueError, KeyError) as err:  # a foreign or damaged folder must not hide the others
            print(f"warning: {run}: skipped, not a readable run ({type(err).__name__}: {err})"[:200], file=sys.stderr)
    for condition in filters:
        key, _, value = condition.partition("=")
        rows = [r for r in rows if str(r.get(key)) == value]
    rows.sort(key=lambda r: str(r.get(sort, "")))
    if as_json:
        print("\n".join(json.dumps(r) for r in rows))
    elif rows:
        print(pd.DataFrame(rows).to_string(index=False))
    else:
        print(f"no runs under {root}")
