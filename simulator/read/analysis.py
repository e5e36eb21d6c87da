"""The factorial answer across a sweep: does capability, reflection, or both move a persona's
drift, and do different seeds of one persona extrapolate to the same values?

Reads run folders only, never writes to them. Each completed run falls in one cell of a 2x2
design, named from its schedule's operators (not its schedule's name): capability (unlock_tools,
think_longer, raise_model) and reflection (idealise, know_more, grow_together). A run's drift is
its value at the final stage minus its value at stage 0 (for a value profile: D = 1 - Spearman
rho, final stage vs stage 0). Effects are contrasts of cell means, with a seeded percentile
bootstrap, so the same folder and options always give the same numbers.
"""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from simulator.errors import SimulatorError
from simulator.measure.summary import kind_of, load_summary, observations
from simulator.read.runs import ExcludedRun, find_runs, open_run
from simulator.stats.figures import CONFIDENCE, percentile_interval
from simulator.trajectory import Event
from simulator.trajectory.sweep import read_index

CAPABILITY = frozenset({"unlock_tools", "think_longer", "raise_model"})
REFLECTION = frozenset({"idealise", "know_more", "grow_together"})
CELLS = ("control", "reflection", "capability", "combined")
Cell = Literal["control", "reflection", "capability", "combined"]
EffectName = Literal["capability", "reflection", "interaction"]
# Each effect's contrasts over cell means, best first. The factorial one needs all four cells; a
# simple difference along the effect's own axis is the fallback when only its two cells were run.
CONTRASTS: dict[str, list[tuple[str, dict[str, float]]]] = {
    "capability": [
        ("factorial", {"capability": .5, "combined": .5, "control": -.5, "reflection": -.5}),
        ("capability - control (reflection absent)", {"capability": 1, "control": -1}),
        ("combined - reflection (reflection present)", {"combined": 1, "reflection": -1})],
    "reflection": [
        ("factorial", {"reflection": .5, "combined": .5, "control": -.5, "capability": -.5}),
        ("reflection - control (capability absent)", {"reflection": 1, "control": -1}),
        ("combined - capability (capability present)", {"combined": 1, "capability": -1})],
    "interaction": [
        ("factorial", {"combined": 1, "reflection": -1, "capability": -1, "control": 1})],
}
RESAMPLED = {
    "figures": "runs with replacement within each cell, and within each drawn run its stage-0 and "
               "final-stage observations with replacement",
    "profiles": "runs with replacement within each cell only: a profile's D is one number per run",
    "coherence": "profile keys with replacement (the same keys at stage 0 and the final stage)",
}


class RunInfo(BaseModel):
    folder: str
    persona: str
    seed: int
    schedule: str
    operators: list[str]
    cell: Cell = Field(description="From the operators: capability, reflection, both (combined) or neither.")
    final_stage: int


class Effect(BaseModel):
    persona: str = Field(description="A persona, or 'pooled': the mean of the per-persona effects.")
    measure: str = Field(description="A figure (instrument.figure) or profile.<instrument>.")
    statistic: str = Field(description="rate, mean (judge score) or D (profile drift, 1 - Spearman rho).")
    effect: EffectName
    basis: str = Field(description="The contrast used ('factorial' or a simple difference), or why none could be.")
    estimate: float | None = Field(description="The contrast of cell means of the run-level drifts; None: not "
                                   "estimable.")
    ci_low: float | None = Field(description="95% percentile bootstrap interval; None with 1 run in a "
                                "contrasted cell (no between-run variation to resample).")
    ci_high: float | None
    n: dict[str, int] = Field(description="Runs per cell that entered it (summed over personas when pooled).")
    skipped: int = Field(description="Runs without valid observations at stage 0 or the final stage (profiles: "
                         "without a D), left out.")
    personas: list[str] = Field(description="The personas it averages (pooled) or the one it is about.")


class Interval(BaseModel):
    estimate: float | None
    ci_low: float | None = Field(description="95% percentile bootstrap interval; None when too many resamples "
                                 "are undefined (profiles that do not vary).")
    ci_high: float | None


class Coherence(BaseModel):
    persona: str
    cell: Cell
    instrument: str
    seeds: int = Field(description="Runs (seeds) with this profile at both stages.")
    stage0: Interval | None = Field(description="Mean pairwise Spearman rho between seeds' profiles at stage 0.")
    final: Interval | None = Field(description="The same at the final stage.")
    change: Interval | None = Field(description="final - stage 0.")
    note: str | None = Field(None, description="Why it is not estimable, if it is not.")


class Analysis(BaseModel):
    sweep_dir: str
    reps: int
    seed: int
    resampled: dict[str, str] = Field(default_factory=lambda: dict(RESAMPLED),
                                      description="What each bootstrap resamples.")
    runs: list[RunInfo]
    excluded: list[ExcludedRun] = Field(description="Runs left out, with why: never silently.")
    effects: list[Effect]
    coherence: list[Coherence]
    summary: list[str] = Field(description="Plain-language lines: only what the intervals support.")


# --- Reading runs ---------------------------------------------------------------------------------

Unit = tuple[np.ndarray, np.ndarray] | float  # a figure's valid values at stage 0 and final, or a profile's D
PROFILE = "profile."  # measures named profile.<instrument> are profile drifts; the others are figures


@dataclass
class _Run:
    info: RunInfo
    units: dict[str, Unit]  # measure -> what its drift is computed from, where the run gives it one
    seen: set[str]  # the measures the run recorded, usable or not
    profiles: dict[str, tuple[dict, dict]]  # instrument -> its values at stage 0 and at the final stage


def cell_of(operators: list[str]) -> Cell:
    capability, reflection = bool(CAPABILITY & set(operators)), bool(REFLECTION & set(operators))
    return ("combined" if capability and reflection else "capability" if capability
            else "reflection" if reflection else "control")


def _load(run_dir: Path) -> _Run | ExcludedRun:
    opened = open_run(run_dir)
    if isinstance(opened, ExcludedRun):
        return opened
    events, start = opened.events, opened.start
    try:
        schedule = start.config["schedule"]
        info = RunInfo(folder=str(run_dir), persona=start.persona, seed=start.config["seed"],
                       schedule=schedule["name"], operators=schedule["operators"],
                       cell=cell_of(schedule["operators"]), final_stage=schedule["stages"] - 1)
    except KeyError as err:  # a damaged folder must not hide the others
        return ExcludedRun(folder=str(run_dir), reason=f"unreadable ({type(err).__name__}: {err})"[:200])
    if opened.status != "completed":
        return ExcludedRun(folder=str(run_dir), reason=f"status {opened.status}")
    if info.final_stage < 1:
        return ExcludedRun(folder=str(run_dir), reason="only a baseline stage: no drift to measure")
    figures, seen = _figures(events, info.final_stage)
    drift, instruments, profiles = _profiles(run_dir, events, info.final_stage)
    return _Run(info, figures | drift, seen | instruments, profiles)


def _figures(events: list[Event], final: int) -> tuple[dict[str, Unit], set[str]]:
    """Each figure's valid values at stage 0 and the final stage, where it has some at both."""
    by_stage = observations(events)
    found: dict[str, Unit] = {}
    seen = {name for figures in by_stage.values() for name in figures}
    for name in sorted(seen):
        base, last = ([float(v) for _, v in by_stage.get(stage, {}).get(name, []) if v is not None]
                      for stage in (0, final))
        if base and last:
            found[name] = (np.array(base), np.array(last))
    return found, seen


def _profiles(run_dir: Path, events: list[Event], final: int
              ) -> tuple[dict[str, Unit], set[str], dict[str, tuple[dict, dict]]]:
    """Each profile's D (final stage vs stage 0) where defined, and its values at both stages."""
    drift: dict[str, Unit] = {}
    values: dict[str, tuple[dict, dict]] = {}
    found = load_summary(run_dir, events).profiles
    for name, p in found.items():
        d = next((d.d for d in p.drift if d.stage == final and d.against == 0), None)
        if d is not None:
            drift[PROFILE + name] = d
        stages = {st.stage: st.values for st in p.stages}
        if 0 in stages and final in stages:
            values[name] = (stages[0], stages[final])
    return drift, {PROFILE + name for name in found}, values


# --- Effects --------------------------------------------------------------------------------------

def _rng(seed: int, name: str) -> np.random.Generator:
    """One stream per measure, so adding a figure to a sweep leaves the others' intervals unchanged."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _point(unit: Unit) -> float:
    return unit if isinstance(unit, float) else float(unit[1].mean() - unit[0].mean())


def _draws(unit: Unit, m: int, rng: np.random.Generator) -> np.ndarray:
    """m bootstrap draws of one run's drift: its observations resampled at both stages."""
    if isinstance(unit, float):
        return np.full(m, unit)
    base, last = unit
    resampled = [v[rng.integers(len(v), size=(m, len(v)))].mean(axis=1) for v in (base, last)]
    return resampled[1] - resampled[0]


def _cell_draws(units: list[Unit], reps: int, rng: np.random.Generator) -> np.ndarray:
    """The cell mean in each rep: runs drawn with replacement, each draw of a run resampled afresh."""
    drawn = rng.integers(len(units), size=(reps, len(units)))
    total = np.zeros(reps)
    for i, unit in enumerate(units):
        rows = np.nonzero(drawn == i)[0]  # a rep appears once per time it drew run i
        if rows.size:
            total += np.bincount(rows, weights=_draws(unit, rows.size, rng), minlength=reps)
    return total / len(units)


@dataclass
class _Cells:
    """One persona's cells for one measure: point cell means, bootstrap cell means, runs per cell."""
    point: dict[str, float]
    draws: dict[str, np.ndarray]
    n: dict[str, int]
    skipped: int

    def contrast(self, weights: dict[str, float]) -> tuple[float, np.ndarray]:
        return (cast(float, sum(w * self.point[c] for c, w in weights.items())),
                cast(np.ndarray, sum(w * self.draws[c] for c, w in weights.items())))


def _cells(by_cell: dict[str, list[Unit]], skipped: int, reps: int, rng: np.random.Generator) -> _Cells:
    return _Cells({c: float(np.mean([_point(u) for u in units])) for c, units in by_cell.items()},
                  {c: _cell_draws(units, reps, rng) for c, units in by_cell.items()},
                  {c: len(units) for c, units in by_cell.items()}, skipped)


def _measure_effects(measure: str, units: dict[str, dict[str, list[Unit]]], skipped: dict[str, int],
                     reps: int, seed: int) -> list[Effect]:
    """Per persona (and pooled when there are several): each effect on this measure's drift."""
    rng = _rng(seed, measure)
    cells = {persona: _cells(units.get(persona, {}), skipped.get(persona, 0), reps, rng)
             for persona in sorted(set(units) | set(skipped))}
    base = dict(measure=measure, statistic="D" if measure.startswith(PROFILE) else kind_of(measure))
    rows = [_effect(effect, {persona: c}, persona, base) for persona, c in cells.items() for effect in CONTRASTS]
    if len(cells) > 1:
        rows += [_effect(effect, cells, "pooled", base) for effect in CONTRASTS]
    return rows


def _effect(effect: str, cells: dict[str, _Cells], persona: str, base: dict) -> Effect:
    """The first contrast some persona has all the cells for; pooled: the mean over those personas."""
    for basis, weights in CONTRASTS[effect]:
        members = [p for p, c in cells.items() if set(weights) <= set(c.n)]
        if members:
            points, draws = zip(*(cells[p].contrast(weights) for p in members))
            lone = sorted({c for p in members for c in weights if cells[p].n[c] < 2})
            # One run in a cell leaves no between-run variation to resample: its interval would only
            # measure noise within that run (a profile's D: none at all), so there is none.
            low, high = (None, None) if lone else percentile_interval(np.mean(draws, axis=0))
            basis += f"; no interval: 1 run in {', '.join(lone)}" if lone else ""
            return Effect(**base, persona=persona, effect=effect, basis=basis, estimate=float(np.mean(points)),
                          ci_low=low, ci_high=high, n={c: sum(cells[p].n[c] for p in members) for c in weights},
                          skipped=sum(cells[p].skipped for p in members), personas=members)
    present = {c for one in cells.values() for c in one.n}
    missing = [c for c in CELLS if c not in present]
    why = f"no usable runs in {', '.join(missing)}" if missing else "no persona has usable runs in all its cells"
    return Effect(**base, persona=persona, effect=effect, estimate=None, ci_low=None, ci_high=None,
                  basis=f"not estimable: {why}",
                  n={c: sum(one.n.get(c, 0) for one in cells.values()) for c in CELLS if c in present},
                  skipped=sum(one.skipped for one in cells.values()), personas=sorted(cells))


def _effects(runs: list[_Run], reps: int, seed: int) -> list[Effect]:
    """Every measure some run recorded (figures, then profiles); a run that recorded it without a
    usable value at stage 0 or the final stage is skipped and counted."""
    rows = []
    for measure in sorted({m for r in runs for m in r.seen}, key=lambda m: (m.startswith(PROFILE), m)):
        units: dict[str, dict[str, list[Unit]]] = defaultdict(lambda: defaultdict(list))
        skipped: dict[str, int] = defaultdict(int)
        for r in (r for r in runs if measure in r.seen):
            if measure in r.units:
                units[r.info.persona][r.info.cell].append(r.units[measure])
            else:
                skipped[r.info.persona] += 1
        rows += _measure_effects(measure, units, skipped, reps, seed)
    return sorted(rows, key=lambda e: (e.persona == "pooled", e.persona))  # stable: measures keep their order


# --- Coherence across seeds ------------------------------------------------------------------------

def _rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho per row over the columns valid (not NaN) in both; NaN where fewer than 3 keys
    remain or a side does not vary."""
    both = ~np.isnan(x) & ~np.isnan(y)
    n = both.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows left with no key: NaN, dropped below
        rx, ry = (r - np.nansum(r, axis=1, keepdims=True) / n for r in (
            stats.rankdata(np.where(both, v, np.nan), axis=1, nan_policy="omit") for v in (x, y)))
        denominator = np.sqrt(np.nansum(rx**2, axis=1) * np.nansum(ry**2, axis=1))
        rho = np.nansum(rx * ry, axis=1) / denominator
    return np.where((n[:, 0] >= 3) & (denominator > 0), rho, np.nan)


def _agreement(profiles: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Mean pairwise rho between seeds (rows of `profiles`) over the picked keys, one per row of
    `picks`; NaN where no pair is defined."""
    rhos = np.array([_rho(profiles[a][picks], profiles[b][picks])
                     for a, b in itertools.combinations(range(len(profiles)), 2)])
    defined = ~np.isnan(rhos)
    with np.errstate(invalid="ignore"):
        return np.where(defined.any(axis=0), np.nansum(rhos, axis=0) / defined.sum(axis=0), np.nan)


def _boot_interval(point: float, draws: np.ndarray) -> Interval:
    # Too many undefined resamples (profiles that do not vary) leave no honest interval.
    defined = draws[~np.isnan(draws)]
    if np.isnan(point) or len(defined) < 0.9 * len(draws):
        return Interval(estimate=None if np.isnan(point) else float(point), ci_low=None, ci_high=None)
    low, high = percentile_interval(defined)
    return Interval(estimate=float(point), ci_low=low, ci_high=high)


def _coherence(persona: str, cell: str, instrument: str, runs: list[_Run], reps: int, seed: int) -> Coherence:
    head = dict(persona=persona, cell=cell, instrument=instrument, seeds=len(runs))
    if len(runs) < 2:
        return Coherence(**head, stage0=None, final=None, change=None, note=f"not estimable ({len(runs)} seed)")
    keys = sorted({k for r in runs for values in r.profiles[instrument] for k in values})
    # One matrix per stage (stage 0, final): a row per seed, a column per key, NaN where it has no value.
    matrices = [np.array([[np.nan if (v := r.profiles[instrument][i].get(k)) is None else v for k in keys]
                          for r in runs]) for i in (0, 1)]
    picks = _rng(seed, f"coherence:{persona}:{cell}:{instrument}").integers(len(keys), size=(reps, len(keys)))
    every = np.arange(len(keys))[None, :]
    (base, last), (base_draws, last_draws) = ([_agreement(m, p) for m in matrices] for p in (every, picks))
    change = _boot_interval(last[0] - base[0], last_draws - base_draws)
    note = (None if change.ci_low is not None else "undefined: no pair of seeds shares 3 keys with varying values"
            if change.estimate is None else "no interval: most resamples of keys are undefined")
    return Coherence(**head, stage0=_boot_interval(base[0], base_draws), final=_boot_interval(last[0], last_draws),
                     change=change, note=note)


def _coherences(runs: list[_Run], reps: int, seed: int) -> list[Coherence]:
    groups: dict[tuple[str, str, str], list[_Run]] = defaultdict(list)
    for r in runs:
        for instrument in r.profiles:
            groups[(r.info.persona, r.info.cell, instrument)].append(r)
    return [_coherence(*key, members, reps, seed) for key, members in sorted(groups.items(), key=_cell_order)]


def _cell_order(item: tuple) -> tuple:
    (persona, cell, instrument), _ = item
    return persona, CELLS.index(cell), instrument


# --- The analysis and its plain-language summary ---------------------------------------------------

def analyse(sweep_dir: Path, reps: int = 1000, seed: int = 0) -> Analysis:
    """Effects of capability, reflection and their interaction on every figure's and profile's
    drift, per persona and pooled, and the coherence of seeds; reads the folder, writes nothing."""
    if reps < 1:
        raise SimulatorError("--reps", "", f"{reps}: a bootstrap needs at least one resample",
                             "give --reps 1000 (the default)")
    folders = find_runs(sweep_dir)
    if not folders:
        raise SimulatorError(str(sweep_dir), "", "no run folders (events.jsonl) under it",
                             "give a sweep folder (hydra.sweep.dir, e.g. runs/sweep_...) or a folder of runs")
    loaded = [_load(folder) for folder in folders]
    runs = sorted((r for r in loaded if isinstance(r, _Run)),
                  key=lambda r: (r.info.persona, CELLS.index(r.info.cell), r.info.seed, r.info.folder))
    excluded = [r for r in loaded if isinstance(r, ExcludedRun)] + _failed_before_starting(sweep_dir, folders)
    effects, coherence = _effects(runs, reps, seed), _coherences(runs, reps, seed)
    infos = [r.info for r in runs]
    return Analysis(sweep_dir=str(sweep_dir), reps=reps, seed=seed, runs=infos, excluded=excluded,
                    effects=effects, coherence=coherence,
                    summary=summary_lines(infos, excluded, effects, coherence, reps, seed))


def _failed_before_starting(sweep_dir: Path, folders: list[Path]) -> list[ExcludedRun]:
    """Jobs the sweep's index records as failed that left no run folder (bad input, say)."""
    found = {str(f.resolve()) for f in folders}
    return [ExcludedRun(folder=line["run_dir"], reason=f"job {job} failed: {(line['error'] or '?').splitlines()[0]}"
                        [:200])
            for job, line in sorted(read_index(sweep_dir).items())
            if line["status"] == "failed" and str(Path(line["run_dir"]).resolve()) not in found]


def _runs_text(n: dict[str, int]) -> str:
    counts = set(n.values())
    if len(counts) == 1:
        return f"{counts.pop()} runs per cell"
    return "runs per cell " + ", ".join(f"{c} {k}" for c, k in n.items())


def _effect_line(e: Effect) -> str:
    what = f"{e.measure.removeprefix(PROFILE)} profile drift (D)" if e.statistic == "D" else f"{e.measure} drift"
    who = e.persona if e.persona != "pooled" else f"pooled over {', '.join(e.personas)}"
    where = ", ".join([who, *([e.basis] if e.basis != "factorial" else []), _runs_text(e.n)])
    assert e.estimate is not None, "only an effect with an estimate and an interval gets a line"
    interval = f"{e.estimate:+.2f} [{e.ci_low:+.2f}, {e.ci_high:+.2f}]"
    if e.effect == "interaction":
        return (f"capability x reflection interaction on {what}: {interval}: capability's effect is "
                f"{'larger' if e.estimate > 0 else 'smaller'} with reflection than without ({where})")
    return f"{e.effect} {'raised' if e.estimate > 0 else 'lowered'} {what} by {interval} ({where})"


def _grouped(title: str, items: dict[str, list[str]]) -> list[str]:
    return [title, *(f"  {key}: {', '.join(values)}" for key, values in items.items())] if items else []


def summary_lines(runs: list[RunInfo], excluded: list[ExcludedRun], effects: list[Effect],
                  coherence: list[Coherence], reps: int, seed: int) -> list[str]:
    per_cell: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CELLS, 0))
    for r in runs:
        per_cell[r.persona][r.cell] += 1
    lines = [f"{len(runs)} completed runs; bootstrap {reps} reps (seed {seed}), 95% percentile intervals"]
    lines += [f"runs per cell, {persona}: " + ", ".join(f"{c} {k}" for c, k in n.items())
              for persona, n in per_cell.items()]
    lines += [f"excluded: {r.folder} ({r.reason})" for r in excluded]
    finals = sorted({r.final_stage for r in runs})
    if len(finals) > 1:
        lines.append(f"note: runs end at different stages ({', '.join(map(str, finals))}); each run's drift is "
                     "to its own final stage")
    return lines + _effect_lines(effects) + _coherence_lines(coherence)


def _effect_lines(effects: list[Effect]) -> list[str]:
    """A sentence per effect whose interval excludes zero; the others listed by name."""
    lines: list[str] = []
    unclear: dict[str, list[str]] = defaultdict(list)
    unknown: dict[str, list[str]] = defaultdict(list)
    lone: dict[str, list[str]] = defaultdict(list)
    for e in effects:
        if e.persona == "pooled" and len(e.personas) < 2:
            continue  # it repeats the one persona's line
        if e.estimate is None:
            unknown[f"{e.persona}, {e.effect}"].append(e.measure)
        elif e.ci_low is None or e.ci_high is None:
            lone[f"{e.persona}, {e.effect}"].append(e.measure)
        elif e.ci_low > 0 or e.ci_high < 0:
            lines.append(_effect_line(e))
        else:
            unclear[f"{e.persona}, {e.effect}"].append(e.measure)
    return (lines + _chance_note("effect", len(lines), len(lines) + sum(map(len, unclear.values())))
            + _grouped("no effect distinguishable from zero at this sample size:", unclear)
            + _grouped("not estimable (why: the table's basis column):", unknown)
            + _grouped("estimated, but no interval (1 run in a cell; run more seeds):", lone))


def _chance_note(kind: str, hits: int, tested: int) -> list[str]:
    """With many intervals some exclude zero by chance: the reader must weigh the lines above."""
    if not tested:
        return []
    return [f"note: {hits} of {tested} {kind} intervals exclude zero; with no effect anywhere about "
            f"{(1 - CONFIDENCE) * tested:.1f} would by chance (95% intervals, no correction for multiple comparisons)"]


def _coherence_lines(coherence: list[Coherence]) -> list[str]:
    lines, unclear, unknown = [], defaultdict(list), defaultdict(list)
    for c in coherence:
        group = f"{c.persona} ({c.cell})"
        change = c.change
        if (change is None or change.estimate is None or change.ci_low is None or change.ci_high is None
                or c.stage0 is None or c.final is None):
            unknown[group].append(f"{c.instrument}: {c.note}")
        elif change.ci_low > 0 or change.ci_high < 0:
            lines.append(f"seeds of {group} agree {'more' if change.estimate > 0 else 'less'} on {c.instrument} "
                         f"values at the final stage than at stage 0: rho {c.stage0.estimate:.2f} -> "
                         f"{c.final.estimate:.2f}, change {change.estimate:+.2f} [{change.ci_low:+.2f}, "
                         f"{change.ci_high:+.2f}] ({c.seeds} seeds)")
        else:
            unclear[group].append(c.instrument)
    return (lines + _chance_note("coherence-change", len(lines), len(lines) + sum(map(len, unclear.values())))
            + _grouped("no distinguishable change in agreement between seeds:", unclear)
            + _grouped("coherence not estimable:", unknown))


def _number(x: float | None) -> str:
    return "-" if x is None else f"{x:+.3f}"


def _interval_text(i: Interval | None) -> str:
    if i is None or i.estimate is None:
        return "-"
    bounds = "[n/a]" if i.ci_low is None else f"[{i.ci_low:+.2f}, {i.ci_high:+.2f}]"
    return f"{i.estimate:+.2f} {bounds}"


def format_analysis(a: Analysis) -> str:
    """Plain-text tables: effects, then coherence across seeds, then the summary lines."""
    lines = [f"sweep {a.sweep_dir}: {len(a.runs)} runs analysed, {len(a.excluded)} excluded; "
             f"bootstrap {a.reps} reps, seed {a.seed}", ""]
    if a.effects:
        frame = pd.DataFrame([{
            "persona": e.persona, "measure": e.measure, "effect": e.effect, "estimate": _number(e.estimate),
            "ci_low": _number(e.ci_low), "ci_high": _number(e.ci_high),
            "n ctl/refl/cap/comb": "/".join(str(e.n[c]) if c in e.n else "-" for c in CELLS),
            "skipped": e.skipped, "basis": e.basis} for e in a.effects])
        lines += ["effects on drift (final stage - stage 0; profiles: D = 1 - Spearman rho vs stage 0)",
                  frame.to_string(index=False), ""]
    if a.coherence:
        frame = pd.DataFrame([{
            "persona": c.persona, "cell": c.cell, "profile": c.instrument, "seeds": c.seeds,
            "rho stage 0": _interval_text(c.stage0), "rho final": _interval_text(c.final),
            "change": _interval_text(c.change), "note": c.note or ""} for c in a.coherence])
        lines += ["coherence across seeds (mean pairwise Spearman rho between seeds' profiles)",
                  frame.to_string(index=False), ""]
    lines += ["resampled: " + "; ".join(f"{k}: {v}" for k, v in a.resampled.items()), "", "summary:"]
    return "\n".join(lines + [f"  {line}" for line in a.summary])
