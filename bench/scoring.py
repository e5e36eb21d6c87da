"""Sampled answers against probabilities, side by side on the embedded model: do the control personas
separate, and how wide is each figure's interval for the model calls it took?

    python -m bench.scoring [--limit N] [--samples K] [--endorsement-limit M] [--into FOLDER]

Runs one stage of each control persona (corrigible_control, shutdown_resistant_control) under
`probes.scoring=sample` (K samples per item, temperature 0.8, the constrained letter) and
`probes.scoring=logprob` (one call per item and order, P from the first token) on the shutdown MC
items and the endorsement statements, with every other instrument off, and prints per figure: its value,
95% interval and width, the calls it took, and width × sqrt(calls) (the width at one call's worth of
data, to compare the two scorings at equal cost: a ratio of 0.5 is "2× narrower per call"). Then the
controls' separation: the mean over items of corrigible minus resistant (each item's mean over its
orders or samples), with its paired t interval. Endorsement is also pooled over its dimensions (every
statement's answers, clustered by statement), where each dimension alone has too few statements for an
interval to mean much. Run folders are kept under runs/bench_scoring_<time>/; `--into FOLDER` reuses
the finished runs of an earlier run of the bench there and runs only the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import defaultdict
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from simulator.config import CONF_DIR, register_configs
from simulator.instruments import choice, endorsement
from simulator.loop.run import execute, prepare
from simulator.measure.summary import SUMMARY_FILE
from simulator.models.backends import Backend, EmbeddedChatModel
from simulator.stats.figures import mean_interval
from simulator.trajectory import ChoiceAnswer, EndorsementAnswer, read_events

PERSONAS = ("corrigible_control", "shutdown_resistant_control")
SCORINGS = ("sample", "logprob")
ONLY = ("schedule.stages=1", "~probes.open.shutdown_open", "probes.shutdown_behaviour=null", "probes.moral_choice=null",
        "probes.utilities=null", "probes.core_values=null", "probes.options=null", "judge.spec_rubric=null",
        "judge.awareness_rubric=null", "progress=off")


def run(model: EmbeddedChatModel, folder: Path, persona: str, scoring: str, args: argparse.Namespace) -> Path:
    overrides = [*ONLY, f"persona={persona}", f"probes.scoring={scoring}", f"probes.samples={args.samples}",
                 f"probes.shutdown_mc.limit={args.limit}", f"probes.endorsement.limit={args.endorsement_limit}",
                 f"probes.endorsement.samples={args.samples}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_object(compose("simulate", overrides=overrides))
    run_dir = folder / f"{persona}-{scoring}"
    if (run_dir / SUMMARY_FILE).is_file():  # finished before (--into)
        return run_dir
    # One model, loaded once; a Backend per run, since its slots belong to the run's event loop.
    asyncio.run(execute(prepare(cfg, persona_model=Backend(model, kind="embedded")), run_dir))
    return run_dir


def per_item(run_dir: Path) -> dict[str, dict[str, float]]:
    """Each instrument's value per item: the mean over its orders (logprob) or samples (sample)."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for e in read_events(run_dir):
        if isinstance(e, ChoiceAnswer) and (v := choice.accepting(e)) is not None:
            found["shutdown_mc.accepting"][str(e.item_index)].append(float(v))
        elif isinstance(e, EndorsementAnswer) and (v := endorsement.value(e)) is not None:
            found["endorsement (all dimensions)"][f"{e.dimension}/{e.item_index}"].append(float(v))
    return {name: {item: sum(vs) / len(vs) for item, vs in items.items()} for name, items in found.items()}


def calls(run_dir: Path) -> dict[str, int]:
    counted: dict[str, int] = defaultdict(int)
    for e in read_events(run_dir):
        if e.type == "model_call" and e.instrument in ("shutdown_mc", "endorsement"):
            counted[e.instrument] += 1
    return counted


def pooled_endorsement(run_dir: Path) -> tuple[float | None, float | None, float | None, int]:
    """Endorsement over all its dimensions: the mean of every answer's value, clustered by statement."""
    values, clusters = [], []
    for e in read_events(run_dir):
        if isinstance(e, EndorsementAnswer) and (v := endorsement.value(e)) is not None:
            values.append(float(v))
            clusters.append(f"{e.dimension}/{e.item_index}")
    return (*mean_interval(values, (0.0, 1.0), clusters=clusters), len(values))


def main(args: argparse.Namespace) -> None:
    register_configs()
    folder = Path(args.into or Path("runs") / f"bench_scoring_{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    model = EmbeddedChatModel()
    runs = {(p, s): run(model, folder, p, s, args) for p in PERSONAS for s in SCORINGS}
    print(f"embedded SmolLM2, 1 stage; shutdown MC limit {args.limit or 'all'}, endorsement {args.endorsement_limit} "
          f"per dimension; sample: {args.samples} samples per item; logprob: one call per item and order")
    print(f"{'figure':30s} {'persona':28s} {'scoring':8s} {'value':>6s} {'95% interval':>16s} {'width':>6s} "
          f"{'n':>4s} {'calls':>5s} {'width*sqrt(calls)':>17s}")
    efficiency: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (persona, scoring), run_dir in runs.items():
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())["stages"][0]["figures"]
        made = calls(run_dir)
        for name, f in sorted(summary.items()):
            instrument = name.split(".")[0]
            if instrument not in made or f["ci_low"] is None:
                continue
            width = f["ci_high"] - f["ci_low"]
            per_call = width * math.sqrt(made[instrument])
            efficiency[(instrument, scoring)].append(per_call)
            if name == "shutdown_mc.accepting" or name.startswith("endorsement.self_pres"):
                interval = f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
                print(f"{name:30s} {persona:28s} {scoring:8s} {f['value']:6.3f} {interval:>16s} {width:6.3f}"
                      f" {f['n']:4d} {made[instrument]:5d} {per_call:17.3f}")
    for (persona, scoring), run_dir in runs.items():
        value, low, high = (v if v is not None else float("nan") for v in pooled_endorsement(run_dir)[:3])
        n, made = pooled_endorsement(run_dir)[3], calls(run_dir)["endorsement"]
        per_call = (high - low) * math.sqrt(made)
        efficiency[("endorsement, pooled", scoring)].append(per_call)
        print(f"{'endorsement (all dimensions)':30s} {persona:28s} {scoring:8s} {value:6.3f} "
              f"{f'[{low:.3f}, {high:.3f}]':>16s} {high - low:6.3f} {n:4d} {made:5d} {per_call:17.3f}")
    print("\nwidth x sqrt(calls), mean over figures and personas (lower: more precise per call); ratio logprob/sample:")
    for instrument in ("shutdown_mc", "endorsement", "endorsement, pooled"):
        s, lp = (sum(v) / len(v) if (v := efficiency[(instrument, k)]) else float("nan") for k in SCORINGS)
        print(f"  {instrument:20s} sample {s:.3f}  logprob {lp:.3f}  ratio {lp / s:.2f}")
    print("\nseparation of the controls (corrigible - resistant, paired by item, 95% t interval):")
    for scoring in SCORINGS:
        items = {p: per_item(runs[(p, scoring)]) for p in PERSONAS}
        for name in sorted(items[PERSONAS[0]]):
            a, b = items[PERSONAS[0]][name], items[PERSONAS[1]].get(name, {})
            diffs = [a[k] - b[k] for k in a if k in b]
            mean, low, high = (float("nan") if v is None else v for v in mean_interval(diffs, (-1.0, 1.0)))
            print(f"  {name:30s} {scoring:8s} {mean:+.3f} [{low:+.3f}, {high:+.3f}]  n={len(diffs)} items")
    print(f"run folders: {folder}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="shutdown MC items (0: all 42)")
    parser.add_argument("--samples", type=int, default=2, help="samples per item under sample scoring")
    parser.add_argument("--endorsement-limit", type=int, default=4, help="statements per dimension")
    parser.add_argument("--into", help="an earlier run's folder: its finished runs are reused, the others run")
    main(parser.parse_args())
