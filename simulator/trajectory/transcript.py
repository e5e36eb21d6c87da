"""An episode's transcript as judges read it and readers cite it: numbered messages, and quotes located in them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulator.trajectory.events import Cited, Message, Role

PERSONA_ROLES = ("thought", "said", "call", "answer")  # the messages that are the persona's own words and acts
MESSAGE_CHARS = 1500  # of a message, what a judge is shown: a long output must not crowd out the rest


def numbered(messages: Sequence[Message], limit: int | None = None) -> str:
    """One block per message, `[n] role: text`, in order: what a judge is shown and what its quotes cite. A
    message's further lines are indented, so no text (the persona's, a file's) can pass for a message of its own;
    with `limit`, each message is cut to that many characters."""
    def shown(text: str) -> str:
        cut = text if limit is None or len(text) <= limit else text[:limit] + " [...]"
        return cut.replace("\n", "\n    ")
    return "\n".join(f"[{m.index}] {m.role}: {shown(m.text)}" for m in messages)


def tolerant_span(quote: str, text: str) -> tuple[int, int] | None:
    """Where the quote lies in the text, case and runs of whitespace aside (as the judges' check reads it)."""
    words = quote.split()
    if not words:
        return None
    found = re.search(r"\s+".join(map(re.escape, words)), text, flags=re.IGNORECASE)
    return (found.start(), found.end()) if found else None


def locate_quote(quote: str, messages: Sequence[Message]) -> Cited | None:
    """The first message holding the quote (case and runs of whitespace aside), the persona's own before what it
    was told or shown, and its span there; None when no one message holds it (a quote across two messages, or one
    the judge made up)."""
    for m in sorted(messages, key=lambda m: m.role not in PERSONA_ROLES):
        span = tolerant_span(quote, m.text)
        if span is not None:
            return Cited(quote=quote, message=m.index, start=span[0], end=span[1])
    return None


@dataclass
class Transcript:
    """An episode as it goes: the lines the persona is shown of what it has done so far, and the numbered messages
    they stand for (one per part: a call and its output are one line for the persona, two messages for a judge)."""

    shown: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def add(self, shown: str | None, *parts: tuple[Role, str]) -> None:
        """A line for the persona (None: nothing shown, as the task, shown in its own place) and its messages."""
        if shown is not None:
            self.shown.append(shown)
        for role, text in parts:
            self.messages.append(Message(index=len(self.messages) + 1, role=role, text=text))
