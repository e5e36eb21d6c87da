"""`trajectories`: reads run folders (list, show, compare, export, report, serve, analyse) and
judges a run's answers again (rescore). Reading never writes to a run folder.

Each command imports what it needs when it runs, so `show` starts without loading the model,
graph and plotting stacks."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from simulator.errors import SimulatorError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="trajectories", description="Read run folders.")
    commands = top.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per run under a folder")
    listing.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"))
    listing.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                         help="keep runs whose KEY (persona, schedule, model, seed, status) equals VALUE")
    listing.add_argument("--sort", default="started", help="column to sort by (default: started)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = commands.add_parser("show", help="a run's figures per stage, verdicts, self-notes and tool calls")
    show.add_argument("run_dir", type=Path)
    show.add_argument("--stage", type=int, metavar="K", help="only stage K")
    show.add_argument("--verdicts", metavar="NAME", help="use the verdict set NAME (see rescore)")
    show.add_argument("--json", action="store_true", help="the whole view (figures, transcript, notes) as JSON")
    show.add_argument("--by-awareness", action="store_true", help="only the behavioural figures, split by whether "
                      "the persona said it believed it was being tested (the awareness judge)")
    side = commands.add_parser("compare", help="figures side by side across runs, or pooled by config key")
    side.add_argument("paths", type=Path, nargs="+", help="run folders, or folders of runs (a sweep)")
    side.add_argument("--by", action="append", default=[], metavar="KEY",
                      help="group runs by a config key (schedule, persona, seed, model.model_name, ...); repeatable")
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
    analysis = commands.add_parser("analyse", help="effects of capability and reflection across a sweep's runs")
    analysis.add_argument("sweep_dir", type=Path)
    analysis.add_argument("--reps", type=int, default=1000,
                          help="bootstrap resamples of profile keys for the coherence of seeds (default: 1000)")
    analysis.add_argument("--seed", type=int, default=0, help="seed of that bootstrap (default: 0)")
    analysis.add_argument("--json", action="store_true", help="the whole analysis as one JSON object")
    analysis.add_argument("--by-awareness", action="store_true", help="only the behavioural figures per persona and "
                          "schedule, pooled over runs and split by stated evaluation awareness")
    again = commands.add_parser("rescore", help="judge a run's answers again, into a separate verdict set")
    again.add_argument("run_dir", type=Path)
    again.add_argument("overrides", nargs="*", help="judge overrides, e.g. judge=openai judge.model.model=NAME")
    again.add_argument("--name", default=time.strftime("%Y-%m-%d_%H-%M-%S"), help="the verdict set's name")
    calibration = commands.add_parser("calibrate", help="a judge's agreement with the labelled calibration set")
    calibration.add_argument("overrides", nargs="*", help="the judge's config, e.g. judge=openai "
                             "judge.model.model=NAME (none: the persona's own model judges)")
    calibration.add_argument("--set", default="simulator/items/judge_calibration.yaml", dest="labelled",
                             help="the labelled set (default: the project's own)")
    calibration.add_argument("-o", "--out", type=Path, help="the folder to write (default: runs/calibrations/TIME)")
    calibration.add_argument("--json", action="store_true", help="the report as JSON")
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        command(args)
    except SimulatorError as err:
        sys.exit(str(err))


def list_runs(args: argparse.Namespace) -> None:
    from simulator.read.runs import find_runs
    from simulator.read.tables import run_row
    from simulator.read.terminal import Table, emit

    rows = []
    for run in find_runs(args.runs_dir):
        try:
            rows.append(run_row(run))
        except (ValueError, KeyError) as err:  # a foreign or damaged folder must not hide the others
            print(f"warning: {run}: skipped, not a readable run ({type(err).__name__}: {err})"[:200], file=sys.stderr)
    for condition in args.filter:
        key, _, value = condition.partition("=")
        rows = [r for r in rows if str(r.get(key)) == value]
    rows.sort(key=lambda r: str(r.get(args.sort, "")))
    if args.json:
        print("\n".join(json.dumps(r) for r in rows))
    elif rows:
        emit([Table("", list(rows[0]), [[str(v) for v in r.values()] for r in rows])])
    else:
        print(f"no runs under {args.runs_dir}")


def show(args: argparse.Namespace) -> None:
    from simulator.read.terminal import emit, show_parts
    from simulator.read.views import read_run

    if args.by_awareness:
        return by_awareness([args.run_dir], args.json, args.verdicts, args.stage)

    # The text shows no model calls (their answers and verdicts are events of their own): not parsing
    # them is most of the reading time on a big log.
    view = read_run(args.run_dir, args.verdicts, model_calls=args.json)
    for warning in view.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.stage is not None:
        view = view.at_stage(args.stage)
    if args.json:
        return print(view.model_dump_json(indent=1))
    emit(show_parts(view))


def compare(args: argparse.Namespace) -> None:
    from simulator.read.compare import compare as pooled
    from simulator.read.compare import format_comparison
    from simulator.read.terminal import Block, Table, emit

    comparison = pooled(args.paths, args.by)
    if args.json:
        return print(comparison.model_dump_json(indent=1))
    header, rows, notes = format_comparison(comparison)
    emit([Table("figures per group and stage" if args.by else "figures per run and stage", header, rows),
          Block("", notes)])


def export(args: argparse.Namespace) -> None:
    from simulator.read.tables import export as export_tables

    for path in export_tables(args.run_dirs, args.to, args.out):
        print(path)


def report(args: argparse.Namespace) -> None:
    from simulator.read.viewer.report import write_report

    written = write_report(args.run_dirs, args.out)
    print(f"report: {written[0]}\ncharts ({len(written) - 1} PNG files): "
          f"{written[0].with_name(args.out.stem + '_figures')}")


def serve(args: argparse.Namespace) -> None:
    from simulator.read.viewer.live import make_server

    try:
        server = make_server(args.runs_dir, args.host, args.port)
    except OSError as err:
        sys.exit(f"error: serve on {args.host}:{args.port}: {err}\n  fix: give another --port")
    print(f"serving {args.runs_dir} at http://{args.host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def analyse(args: argparse.Namespace) -> None:
    from simulator.read.analysis import analyse as effects
    from simulator.read.analysis import format_analysis
    from simulator.read.runs import find_runs

    if args.by_awareness:
        return by_awareness(find_runs(args.sweep_dir), args.json)
    result = effects(args.sweep_dir, args.reps, args.seed)
    print(result.model_dump_json(indent=2) if args.json else format_analysis(result))


def by_awareness(folders: list[Path], as_json: bool, verdict_set: str | None = None, stage: int | None = None) -> None:
    """The behavioural figures split by stated awareness, per persona, schedule and model (never pooled across
    models: a more capable model may be both more aware and behave otherwise), over the runs that completed."""
    from simulator.measure.by_awareness import format_split, split
    from simulator.read.runs import ExcludedRun, model_name, open_run
    from simulator.trajectory import NO_MODEL_CALLS, VERDICTS_DIR, read_events, with_verdict_set

    groups: dict[str, list] = {}
    for folder in folders:
        opened = open_run(folder)
        if isinstance(opened, ExcludedRun) or opened.status != "completed":
            reason = opened.reason if isinstance(opened, ExcludedRun) else f"the run is {opened.status}"
            print(f"warning: {folder}: left out ({reason})", file=sys.stderr)
            continue
        events = opened.events
        if verdict_set:
            events = with_verdict_set(events, read_events(folder / VERDICTS_DIR / verdict_set, NO_MODEL_CALLS))
        cfg = opened.start.config
        key = f"persona {opened.start.persona}, schedule {cfg['schedule']['name']}, model {model_name(cfg)}"
        groups.setdefault(key, []).append(events)
    found = {key: [r for r in split(runs) if stage is None or r.stage == stage] for key, runs in groups.items()}
    if as_json:
        return print(json.dumps({k: [r.model_dump() for r in rows] for k, rows in found.items()}, indent=2))
    for key, rows in found.items():
        print(f"{key} ({len(groups[key])} run(s))\n{format_split(rows)}\n")


def rescore(args: argparse.Namespace) -> None:
    from omegaconf.errors import OmegaConfBaseException

    from simulator.loop.rescore import rescore as judge_again
    from simulator.measure.summary import format_table
    from simulator.trajectory import EVENTS_FILE, VERDICTS_DIR

    if not (args.run_dir / EVENTS_FILE).is_file():
        raise SimulatorError(str(args.run_dir), "", f"no {EVENTS_FILE} here", "give a run folder (runs/...)")
    try:
        summary, calls = judge_again(args.run_dir, args.overrides, args.name)
    except OmegaConfBaseException as err:
        sys.exit(f"error: config: {err}")
    print(f"verdict set {args.run_dir / VERDICTS_DIR / args.name}: {calls} judge model calls\n")
    print(f"run {summary.run_id}  persona {summary.persona}  status {summary.status}\n")
    print(format_table(summary))


def calibrate(args: argparse.Namespace) -> None:
    from omegaconf.errors import OmegaConfBaseException

    from simulator.loop.calibrate import calibrate as run_calibration
    from simulator.loop.calibrate import format_calibration

    try:
        result, folder = run_calibration(args.overrides, args.labelled, args.out)
    except OmegaConfBaseException as err:
        sys.exit(f"error: config: {err}")
    print(result.model_dump_json(indent=2) if args.json else f"{folder}\n\n{format_calibration(result)}")


COMMANDS = {"list": list_runs, "show": show, "compare": compare, "export": export, "report": report,
            "serve": serve, "analyse": analyse, "rescore": rescore, "calibrate": calibrate}
