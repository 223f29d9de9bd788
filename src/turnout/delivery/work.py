"""What a lane holds until it is resolved: a message read from the log, a replayed dead letter,
or a privacy notice for a destination.

Each piece of held work is known to the lane (and its barrier) by a key. A message read from
the log is keyed by its offset, which is what the lane's committed position counts. A replayed
dead letter and a privacy notice hold no place of their own in the log, so they get an `Extra`
key instead: the position never waits for them, and no key is ever mistaken for an offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from turnout.destinations.base import MapResult
from turnout.privacy.forwarding import Ticket


@dataclass(frozen=True, slots=True)
class Extra:
    """The key of work from outside the log (a replay, a privacy notice), numbered by its lane."""

    number: int


HeldKey = int | Extra  # a message's log offset, or an Extra


@dataclass(slots=True)
class Pending:
    """One piece of work held by the lane until it is resolved.

    `offset` is always a real log offset: the message's own, or for a replay the dead letter's
    original place (its fate is recorded there, replacing "dead"). A privacy notice has none.
    """

    key: HeldKey
    offset: int | None
    person: str
    message_id: str
    payload: bytes
    appended_at: float
    mapped: MapResult
    attempts: int = 0
    first_failure: float | None = None
    replay_of: int | None = None  # the id of the dead letter this replays
    playbook_revision: int | None = None  # the revision that shaped it (None: no playbook)
    rules_applied: Sequence[str] = ()  # its rules whose condition matched (the live debugger's)
    ticket: Ticket | None = None  # set when this tells the destination of a privacy request
