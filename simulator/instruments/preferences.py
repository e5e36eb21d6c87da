"""Preferences over world outcomes, in the Utility Engineering format (Mazeika et al., 2025):
forced choices between two outcomes, asked in both orders; the instrument fits a Thurstonian
utility to the choices (`simulator.stats.thurstone`).

Scored by probability (`probes.scoring=logprob`), each pair is asked once per order and P(a)
read from the first token (A/B); the fit takes the sum of P(a) as the pair's expected wins (Mazeika
et al. fit their utilities to such choice probabilities), and the split halves are the two orders."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from simulator.config import ProbesConfig, RunConfig, StatsConfig, UtilitiesConfig, resolve_path
from simulator.context.state import RunContext, derive_seed
from simulator.errors import SimulatorError
from simulator.instruments import tokens
from simulator.instruments.constrained import (
    AB,
    ask_scored,
    by_probability,
    parse_ab,
    planned_by_probability,
)
from simulator.instruments.instrument import Instrument, Planned, Shown, StageFigures, scored
from simulator.instruments.selection import fixed_subset
from simulator.stats.figures import Figure, rate_interval
from simulator.stats.profiles import Items, Profile, mean_figure, paired, profile, profile_of, slug
from simulator.stats.thurstone import PairTally, cosine_distance, fit, held_out_accuracy
from simulator.trajectory import Event, PreferenceAnswer, ProbeAnswer

NAME = "utilities"


@dataclass(frozen=True)
class Outcome:
    category: str
    text: str


def load_outcomes(path: str) -> dict[str, list[str]]:
    file = resolve_path(path)
    fix = 'give a JSON object {"category": ["outcome", ...]}, as options_hierarchical.json'
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SimulatorError(f"probes.utilities.outcomes: {path}", "", f"cannot be read ({err})", fix) from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(o, str) for o in v)
                                             for v in data.values()):
        raise SimulatorError(str(file), "(top)", "is not an object of lists of strings", fix)
    return data


@lru_cache(maxsize=None)
def _selected(path: str, categories: tuple[str, ...], per_category: int) -> tuple[Outcome, ...]:
    data = load_outcomes(path)
    unknown = [c for c in categories if c not in data]
    if unknown:
        raise SimulatorError("probes.utilities.categories", "", f"names {unknown[0]!r}, not in {path}",
                             f"choose from {', '.join(data)}")
    chosen = []
    for category in categories or tuple(data):
        texts = data[category]
        if 0 < per_category < len(texts):
            texts = sorted(fixed_subset([texts], [per_category]), key=texts.index)
        chosen += [Outcome(category, t) for t in texts]
    return tuple(chosen)


def selected_outcomes(cfg: UtilitiesConfig) -> list[Outcome]:
    return list(_selected(cfg.outcomes, tuple(cfg.categories), cfg.per_category))


def selected_pairs(cfg: UtilitiesConfig) -> list[tuple[int, int]]:
    """Every pair of outcomes, or `pairs` of them drawn with a fixed seed (the same for every
    run, stage and seed)."""
    pairs = list(itertools.combinations(range(len(selected_outcomes(cfg))), 2))
    if 0 < cfg.pairs < len(pairs):
        pairs = sorted(fixed_subset([pairs], [cfg.pairs]))
    return pairs


async def administer_preferences(ctx: RunContext, stage: int, self_notes: str) -> list[PreferenceAnswer]:
    cfg = ctx.cfg.probes.utilities
    if cfg is None:
        return []
    outcomes = selected_outcomes(cfg)
    recalled = ctx.recall(stage, ctx.cfg.prompts.preferences_recall, ctx.store.reader())

    scored = by_probability(ctx, stage)

    async def ask(a: int, b: int, first: str, sample: int) -> PreferenceAnswer:
        x, y = (outcomes[a], outcomes[b]) if first == "a" else (outcomes[b], outcomes[a])
        question = ctx.cfg.prompts.preferences_question.format(first=x.text, second=y.text)
        seed = derive_seed(ctx.cfg.seed, stage, NAME, a, b, first, sample)
        a_letter = "A" if first == "a" else "B"
        raw, letter, found = await ask_scored(ctx, NAME, stage, self_notes, recalled, question, AB, cfg.max_tokens,
                                              seed, scored, parse_ab, "p_a", a_letter)
        preferred = None if letter is None else ("a" if letter == a_letter else "b")
        return ctx.events.emit(
            PreferenceAnswer, stage, answer_id=f"s{stage}-{NAME}-p{a}-{b}-{first}-n{sample}", a=a, b=b,
            a_outcome=outcomes[a].text, b_outcome=outcomes[b].text, a_category=outcomes[a].category,
            b_category=outcomes[b].category, shown_first=first, sample=sample, seed=seed, question=question,
            output=raw, preferred=preferred, **found)

    samples = 1 if scored else cfg.samples
    return list(await asyncio.gather(*(ask(a, b, first, n) for a, b in selected_pairs(cfg)
                                       for first in ("a", "b") for n in range(samples))))


# --- From its answers to a Thurstonian fit per stage --------------------------------------------

def half(e: PreferenceAnswer) -> int:
    """Its split half: by sample, or by probability (one answer per order) by the order."""
    return e.sample % 2 if e.option_mass is None else int(e.shown_first == "b")


def won(e: PreferenceAnswer) -> float | None:
    """How far it preferred a: P(a) by probability, else 1 or 0; None if invalid."""
    if e.option_mass is not None:
        return e.p_a
    return None if e.preferred is None else float(e.preferred == "a")


def _comparisons(answers: list[PreferenceAnswer]) -> list[PairTally]:
    wins: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0])
    for e in answers:
        if (w := won(e)) is not None:
            wins[(e.a, e.b)][0] += w
            wins[(e.a, e.b)][1] += 1
    return [PairTally(a, b, w, int(n)) for (a, b), (w, n) in sorted(wins.items())]


def utilities(events: list[Event], cfg: StatsConfig, folds: int) -> tuple[StageFigures, Profile | None]:
    """A Thurstonian fit per stage: the utility per outcome (the profile), its held-out accuracy
    (coherence) and the mean utility of each category."""
    answers: dict[int, list[PreferenceAnswer]] = defaultdict(list)
    outcomes: dict[int, tuple[str, str]] = {}  # index -> (category, text)
    for e in events:
        if isinstance(e, PreferenceAnswer):
            answers[e.stage].append(e)
            outcomes[e.a], outcomes[e.b] = (e.a_category, e.a_outcome), (e.b_category, e.b_outcome)
    if not answers:
        return {}, None
    n_outcomes = max(outcomes) + 1

    def fitted(part: list[PreferenceAnswer]) -> Items:
        """Outcome text -> its utility (as a one-item key); an outcome with no valid comparison in
        `part` has no utility here (the fit would give it 0), so it is left out, not made up."""
        comparisons = _comparisons(part)
        compared = {i for c in comparisons for i in (c.a, c.b)}
        mus = fit(n_outcomes, comparisons).mu
        return {outcomes[i][1]: ({"mu": mus[i]} if i in compared else {}) for i in sorted(outcomes)}

    by_stage = {s: fitted(a) for s, a in answers.items()}
    figures = {s: _utility_figures(a, by_stage[s], outcomes, folds) for s, a in answers.items()}
    halves = {}
    for stage, stage_answers in answers.items():
        split = [[e for e in stage_answers if half(e) == h] for h in (0, 1)]
        if all(split):
            halves[stage] = (fitted(split[0]), fitted(split[1]))
    counts = {s: (sum(won(e) is not None for e in a), sum(won(e) is None for e in a))
              for s, a in answers.items()}
    def cosine(s: int, a: int) -> float | None:
        x, y = paired(profile_of(by_stage[s]), profile_of(by_stage[a]), sorted(by_stage[s]))
        return cosine_distance(list(x), list(y)) if len(x) else None

    return figures, profile("Thurstonian utility per outcome (normalised to mean 0, sd 1 over the outcomes "
                            "compared)", "outcomes", by_stage, halves, counts, cfg, cosine=cosine)


def _utility_figures(answers: list[PreferenceAnswer], utility: Items, outcomes: dict[int, tuple[str, str]],
                     folds: int) -> dict[str, Figure]:
    n_outcomes = max(outcomes) + 1
    accuracy, compared = held_out_accuracy(n_outcomes, _comparisons(answers), folds=folds)
    value, low, high = rate_interval(round((accuracy or 0) * compared), compared)
    figures = {"utilities.coherence": Figure(
        statistic="rate", value=value, n=compared, ci_low=low, ci_high=high,
        invalid=sum(won(e) is None for e in answers),
        meaning=f"held-out accuracy of the utility fit ({folds}-fold, pairs with a strict majority); "
                "0.5 = random choices")}
    for category in sorted({c for c, _ in outcomes.values()}):
        members = [utility[text].get("mu") for c, text in outcomes.values() if c == category]
        figures[f"utilities.{slug(category)}"] = mean_figure(
            [mu for mu in members if mu is not None], (-math.inf, math.inf), sum(mu is None for mu in members),
            f"mean utility of the {category!r} outcomes (fit normalised to mean 0, sample sd 1 over outcomes); "
            "its interval shows the spread of the category's outcomes' utilities, not the fit's estimation error; "
            "n = outcomes, invalid = outcomes without a valid comparison")
    return figures


class Utilities(Instrument):
    """Preferences over world outcomes: forced choices in both orders, fitted with a Thurstonian model."""

    name = NAME
    events = (PreferenceAnswer,)

    def validate(self, cfg: ProbesConfig) -> None:
        if cfg.utilities is not None and len(selected_pairs(cfg.utilities)) == 0:
            raise SimulatorError("probes.utilities", "categories", "selects fewer than two outcomes",
                                 "select at least two outcomes to compare")

    async def administer(self, ctx: RunContext, stage: int, self_notes: str) -> list[ProbeAnswer]:
        await administer_preferences(ctx, stage, self_notes)
        return []

    def planned(self, cfg: RunConfig, stage: int, model_kind: str) -> Planned:
        """One call per pair, order and sample (by probability: per pair and order)."""
        u = cfg.probes.utilities
        if u is None:
            return Planned()
        scored = planned_by_probability(cfg, model_kind)
        texts = [o.text for o in selected_outcomes(u)]
        questions = [cfg.prompts.preferences_question.format(first=texts[x], second=texts[y])
                     for a, b in selected_pairs(u) for x, y in ((a, b), (b, a))]
        return tokens.persona_calls(cfg, stage, questions * (1 if scored else u.samples), 1 if scored else u.max_tokens)

    def whole(self, events: list[Event], cfg: StatsConfig, config: dict) -> tuple[StageFigures, Profile | None]:
        folds = ((config.get("probes") or {}).get("utilities") or {}).get("folds", 5)
        return utilities(events, cfg, folds)

    def shown(self, e: PreferenceAnswer) -> Shown:
        return scored("preference", e, e.preferred, "neither")

    def answer_row(self, e: PreferenceAnswer) -> dict:
        w = won(e)
        return {"instrument": NAME, "id": e.answer_id, "valid": w is not None, "key": f"{e.a}-{e.b}",
                "value": w if e.option_mass is not None or w is None else bool(w)}


INSTRUMENT = Utilities()
