"""Telling destinations about a privacy request: one ticket per person and connection.

A request names people; each connection whose destination knows the action (Customer.io
deletes or suppresses a person, a webhook receives a `delete` message) must be told about each
named `userId`. The connection's lane sends a ticket's operations in that person's order, so
nothing of theirs queued before the request is sent after it, and retries it like any other
operation. The lane reports each ticket's fate here; the request's step for that connection
(`connection:<name>`) sums up its tickets: pending, retrying, done, failed or not_supported.

Only `userId`s are forwarded: destinations know people by the id a site gives them, not by the
visitor id of their browser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from turnout.privacy.records import Step

PREFIX = "connection:"
PENDING, RETRYING, DONE, FAILED, NOT_SUPPORTED = (
    "pending",
    "retrying",
    "done",
    "failed",
    "not_supported",
)
TERMINAL = frozenset({DONE, FAILED, NOT_SUPPORTED})
NOT_FORWARDED = "only userIds are forwarded to destinations; this request names none"


def step_name(connection: str) -> str:
    return f"{PREFIX}{connection}"


def connection_of(step: Step) -> str | None:
    """The connection a step is about, or None for Turnout's own steps (log, store, ...)."""
    return step.name[len(PREFIX) :] if step.name.startswith(PREFIX) else None


@dataclass(slots=True)
class Ticket:
    """One person to tell one connection about; the lane calls `report` with each outcome."""

    request_id: str
    connection: str
    action: str
    person: str  # the userId: the lane's ordering key for that person
    report: Callable[[Ticket, str, str], None]  # (ticket, status, detail)

    @property
    def message_id(self) -> str:
        return f"{self.request_id}-{self.connection}"


@dataclass(slots=True)
class Progress:
    """Where each person of one request stands with one connection (this process's view)."""

    people: list[str]
    states: dict[str, str] = field(default_factory=dict)  # person -> status, once dispatched
    details: dict[str, str] = field(default_factory=dict)

    def summarise(self, step: Step) -> None:
        """Write the people's states into the request's step for the connection."""
        states = [self.states.get(p, PENDING) for p in self.people]
        step.count = states.count(DONE)
        if all(s in TERMINAL for s in states):
            if FAILED in states:
                step.status = FAILED
            elif DONE in states:
                step.status = DONE
            else:
                step.status = NOT_SUPPORTED
        elif RETRYING in states:
            step.status = RETRYING
        else:
            step.status = PENDING
        reasons = [self.details[p] for p in self.people if self.details.get(p)]
        step.detail = reasons[-1] if reasons else ""
