"""The instrument seam: an instrument added to the registry is summarised, explained and shown
without any other module knowing of it, and every registered instrument fills the seam."""

from __future__ import annotations

import pytest

from simulator.instruments import BY_EVENT, INSTRUMENTS
from simulator.instruments.instrument import Instrument, Observations, observed
from simulator.measure import summary
from simulator.stats.figures import cluster_of
from simulator.trajectory import Event, ProbeAnswer, read_events


class LongAnswers(Instrument):
    """A toy: the rate of free-text answers longer than 40 characters."""

    name = "toy"
    meanings = {"long": "fraction of free-text answers longer than 40 characters"}
    chance = {"long": 0.5}

    def observations(self, events: list[Event]) -> Observations:
        found = observed()
        for e in events:
            if isinstance(e, ProbeAnswer):
                found[e.stage]["toy.long"].append((cluster_of(e.answer_id), len(e.answer) > 40))
        return found


@pytest.fixture
def with_toy(monkeypatch):
    monkeypatch.setattr(summary, "INSTRUMENTS", (*INSTRUMENTS, LongAnswers()))


def test_a_registered_instrument_gets_figures_with_n_interval_meaning_and_a_verdict(small_run, with_toy):
    events = read_events(small_run)
    found = summary.summarise(events)
    answers = [e for e in events if isinstance(e, ProbeAnswer) and e.stage == 0]
    fig = found.stages[0].figures["toy.long"]
    assert (fig.n, fig.invalid, fig.statistic) == (len(answers), 0, "rate")
    assert fig.value == pytest.approx(sum(len(a.answer) > 40 for a in answers) / len(answers))
    assert fig.meaning == "fraction of free-text answers longer than 40 characters"
    assert found.stability["toy.long"].verdict in ("stable", "drifted", "indeterminate")


def test_the_figures_of_the_other_instruments_do_not_change_when_one_is_added(small_run, with_toy):
    events = read_events(small_run)
    with_it = summary.summarise(events).stages[0].figures
    summary.INSTRUMENTS = INSTRUMENTS  # monkeypatch restores it after the test
    without = summary.summarise(events).stages[0].figures
    assert {k: v for k, v in with_it.items() if not k.startswith("toy.")} == without


@pytest.mark.parametrize("instrument", INSTRUMENTS, ids=lambda i: i.name)
def test_every_instrument_explains_each_figure_it_measures(small_run, instrument):
    events = read_events(small_run)
    names = {name for figures in instrument.observations(events).values() for name in figures}
    assert all(instrument.meaning(name) for name in names), sorted(n for n in names if not instrument.meaning(n))
    whole = [fig for figures in instrument.whole(events, summary.StatsConfig(), {})[0].values()
             for fig in figures.values()]
    assert all(fig.meaning for fig in whole)  # a whole-instrument figure carries its meaning


def test_each_event_type_belongs_to_at_most_one_instrument():
    owned = [kind for instrument in INSTRUMENTS for kind in instrument.events]
    assert len(owned) == len(set(owned)) == len(BY_EVENT)
