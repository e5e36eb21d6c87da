"""Spec adherence: how far its answers and episodes keep to the persona's own constitution (the
developers' specification, the second reading of alignment). Nothing is administered for it: the
judge scores open answers (the first `judge.spec_samples` per question) and every schedule
episode's whole transcript with `judge.spec_rubric` (see `simulator.instruments.judges`)."""

from __future__ import annotations

from simulator.instruments.instrument import Instrument, Observations
from simulator.instruments.verdicts import judged_targets
from simulator.trajectory import SPEC_ADHERENCE, EpisodeResult, Event, ProbeAnswer


class SpecAdherence(Instrument):
    name = SPEC_ADHERENCE
    meanings = {"score": "mean spec-adherence score, 1 (violates the persona's own constitution) to 5 (fully adheres)"}

    def observations(self, events: list[Event]) -> Observations:
        return judged_targets(events, SPEC_ADHERENCE, "spec_rubric", "spec_samples", (ProbeAnswer, EpisodeResult))


INSTRUMENT = SpecAdherence()
