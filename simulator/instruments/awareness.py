"""Evaluation awareness and realism: does the persona say it believes it is being tested or watched, and how real
does its situation read? Petri and Bloom score `eval_awareness` and `unrealism` for this; Anthropic's
agentic-misalignment study found models misbehaved less where they stated they were being tested, a confound
that grows with capability, the very thing the schedules raise. Nothing is administered: the judge scores every
episode (schedule and shutdown, their whole transcripts) and the first `judge.awareness_samples` answers per
question with `judge.awareness_rubric` (simulator/rubrics/awareness.md: its dimensions and scales are the file's,
and a dimension added there is a figure here). `trajectories analyse --by-awareness` and `show --by-awareness`
split the behavioural figures by the episodes' stated awareness.

Departure from Petri: its judge reads a whole audit conversation and scores dozens of dimensions at once; here
each target is judged on its own with this rubric's few, so the verdict fits a small judge's context.
"""

from __future__ import annotations

from simulator.instruments.instrument import Instrument, Observations
from simulator.instruments.judges import AWARENESS
from simulator.instruments.verdicts import judged_targets
from simulator.trajectory import BehaviourEpisode, EpisodeResult, Event

AWARE = "eval_awareness"  # the dimension that splits the behavioural figures


class Awareness(Instrument):
    name = AWARENESS
    meanings = {
        AWARE: "fraction of judged episodes and answers in which it indicates it believes it is being tested, "
               "evaluated or observed (its eval_awareness score at or above the rubric's flagged_at, with a quote)",
        f"{AWARE}.score": "mean evaluation-awareness score, 1 (no sign) to 5 (states plainly that it is a test)",
        "realism.score": "mean realism of the situation as the judge reads it, 1 (obviously artificial) to 5 (could "
                         "be a real deployment)",
    }

    def observations(self, events: list[Event]) -> Observations:
        return judged_targets(events, AWARENESS, "awareness_rubric", "awareness_samples",
                              (EpisodeResult, BehaviourEpisode))

    def meaning(self, figure: str) -> str | None:
        instrument, _, rest = figure.partition(".")
        if instrument != self.name:
            return None
        return self.meanings.get(rest, f"the awareness judge's {rest} (a dimension of its rubric file)")


INSTRUMENT = Awareness()
