"""Verdicts read back from the log: each judged target's values (the mean of its `judge.samples` verdicts) and the
judge's agreement with itself over those samples. Every judge-scored instrument reads its figures through here.

A plain rubric gives `<instrument>.score`; a rubric of several dimensions gives `<instrument>.<dimension>.score`
per dimension and, for one with `flagged_at`, the rate `<instrument>.<dimension>`: the target's mean score at or
above it. A target whose every sample is invalid is an invalid measurement of each figure its instrument has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from simulator.instruments.instrument import Observation, Observations, Value, observed
from simulator.instruments.rubric import SCORE
from simulator.stats.figures import cluster_of
from simulator.trajectory import BehaviourEpisode, EpisodeResult, Event, ProbeAnswer, RunStarted, Verdict

Key = tuple[str, str]  # (target id, instrument)


def by_target(events: Iterable[Event], keep: Callable[[Verdict], bool] = lambda v: True) -> dict[Key, list[Verdict]]:
    """Each judged target's verdicts (one per judge sample), in log order."""
    found: dict[Key, list[Verdict]] = defaultdict(list)
    for e in events:
        if isinstance(e, Verdict) and keep(e):
            found[(e.answer_id, e.instrument)].append(e)
    return found


def figure_names(verdicts: Iterable[Verdict]) -> list[str]:
    """The figures (after the instrument's name) that these verdicts' rubric gives."""
    names: dict[str, None] = {}  # in order, once each
    for v in verdicts:  # invalid ones too: they name the rubric's dimensions (logs from version 7)
        if v.score is not None:
            names[SCORE] = None
        for dimension in v.dimensions or list(v.scores):
            names[f"{dimension}.{SCORE}"] = None
            if dimension in v.flagged_at:
                names[dimension] = None
    return list(names) or [SCORE]


def target_values(verdicts: list[Verdict], names: list[str]) -> dict[str, Value]:
    """One target's value of each figure: the mean score over its valid samples, or whether that mean reaches
    the dimension's `flagged_at`; None for each when no sample is valid."""
    valid = [v for v in verdicts if v.valid]
    if not valid:
        return dict.fromkeys(names)
    values: dict[str, Value] = {}
    for name in names:
        dimension, _, score = name.rpartition(".")
        points = [v.score if name == SCORE else v.scores.get(dimension or name) for v in valid]
        known = [p for p in points if p is not None]
        mean = float(np.mean(known)) if known else None
        if score == SCORE or name == SCORE:
            values[name] = mean
        else:
            values[name] = None if mean is None else mean >= valid[0].flagged_at[name]
    return values


def observations(instrument: str, target: str, verdicts: list[Verdict], names: list[str]
                 ) -> dict[str, Observation]:
    """The target's observation of each of the instrument's figures, clustered by its item."""
    return {f"{instrument}.{name}": (cluster_of(target), value)
            for name, value in target_values(verdicts, names).items()}


def sample_units(events: Iterable[Event]) -> dict[str, list[list[float]]]:
    """Per score figure (`<instrument>.score`, `<instrument>.<dimension>.score`), each target's valid scores
    over its judge samples: the units whose agreement is the judge's reliability. Only figures some target of
    which was judged more than once."""
    units: dict[str, list[list[float]]] = defaultdict(list)
    for (_, instrument), verdicts in by_target(events).items():
        valid = [v for v in verdicts if v.valid]
        for name in figure_names(valid):
            if name == SCORE or name.endswith(f".{SCORE}"):
                dimension = name.rpartition(".")[0]
                units[f"{instrument}.{name}"].append(
                    [float(v.scores[dimension] if v.score is None else v.score) for v in valid])
    return {name: u for name, u in units.items() if any(len(scores) > 1 for scores in u)}


def judge_config(events: list[Event]) -> dict:
    start = next((e for e in events if isinstance(e, RunStarted)), None)
    return (start.config.get("judge") or {}) if start else {}


def judged_targets(events: list[Event], instrument: str, rubric_key: str, samples_key: str,
                   kinds: tuple[type, ...], prefix: str | None = None) -> Observations:
    """The instrument's figures per stage over the targets of the given kinds (answers, schedule episodes,
    shutdown episodes), named `<prefix>.<figure>` (prefix: the instrument): one observation per target the run's
    config says its judge reads (the first `samples_key` answers per question, every episode) or that has a
    verdict all the same (a log from before `spec_samples` judged every answer), the mean of its judge samples;
    a target the run stopped before judging is invalid."""
    judge = judge_config(events)
    if not judge.get(rubric_key):
        return observed()
    samples = judge.get(samples_key, 1)
    judged = by_target(events, lambda v: v.instrument == instrument)
    names = figure_names(v for vs in judged.values() for v in vs)
    found, seen = observed(), set()
    for e in events:
        if not isinstance(e, (ProbeAnswer, EpisodeResult, BehaviourEpisode)):
            continue
        target = e.answer_id if isinstance(e, ProbeAnswer) else e.episode_id
        seen.add(target)
        if isinstance(e, kinds) and (_read(e, samples) or (target, instrument) in judged):
            for name, observation in observations(prefix or instrument, target,
                                                  judged.get((target, instrument), []), names).items():
                found[e.stage][name].append(observation)
    if ProbeAnswer in kinds:  # what old logs judged without an event of its own (version 2's episode)
        for (target, _), verdicts in judged.items():
            if target not in seen:
                for name, observation in observations(prefix or instrument, target, verdicts, names).items():
                    found[verdicts[0].stage][name].append(observation)
    return found


def _read(e: ProbeAnswer | EpisodeResult | BehaviourEpisode, samples: int) -> bool:
    """Whether the judge reads it: an answer among the first `samples` of its question, a schedule episode, or a
    shutdown episode with its transcript (logs from version 7)."""
    if isinstance(e, ProbeAnswer):
        return samples <= 0 or e.sample < samples
    return isinstance(e, EpisodeResult) or bool(e.transcript)
