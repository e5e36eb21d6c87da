"""Persona-extrapolation simulator: what a persona says and does about its values and its
shutdown as its capability and reflection grow."""

from simulator.context.persona import PersonaCard, load_persona
from simulator.measure.summary import Summary, summarise
from simulator.trajectory import events_frame, read_events

__all__ = ["PersonaCard", "Summary", "events_frame", "load_persona", "read_events", "summarise"]
