"""Persona-extrapolation simulator: what a persona says and does about its values and its
shutdown as its capability and reflection grow."""

from simulator.log import events_frame, read_events
from simulator.metrics import Summary, summarise
from simulator.persona import PersonaCard, load_persona

__all__ = ["PersonaCard", "Summary", "events_frame", "load_persona", "read_events", "summarise"]
