"""Telling destinations about a privacy request: one ticket per person and connection.

A request names people; each connection whose destination knows the action (Customer.io
deletes or suppresses a person, a webhook receives a `delete` message) must be told about each
named `userId`. The connection's lane sends a ticket's operations in that person's order, so
nothing of theirs queued before the request is sent after it, and retries it like any other
operation. The lane reports each ticket's fate here; the request's step for that connection
(`connection:<name>`) sums up its tickets: pending, retrying, done, failed or not_supported.
With a partitioned log the step has one part per partition holding some of the people, told by
the process that delivers that partition (records.py says why).

Only `userId`s are forwarded: destinations know people by the id a site gives them, not by the
visitor id of their browser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from turnout.privacy.records import (
    DONE,
    FAILED,
    NOT_SUPPORTED,
    PENDING,
    RETRYING,
    TERMINAL,
    Step,
)

__all__ = [
    "DONE",
    "FAILED",
    "NOT_FORWARDED",
    "NOT_SUPPORTED",
    "PENDING",
    "RETRYING",
    "TERMINAL",
    "Progress",
    "Ticket",
    "connection_of",
    "step_name",
]

PREFIX = "connection:"
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
    """Where each person of one part (a request, a connection, a partition) stands.

    Counted as the people's states change rather than recounted at each report, since a
    request of 5,000 people gets 5,000 reports: recounting made that quadratic."""

    people: list[str]
    states: dict[str, str] = field(default_factory=dict)  # person -> status, once dispatched
    counts: Counter[str] = field(default_factory=Counter)  # of `states`' values
    detail: str = ""  # the latest reason given for a person's state

    def dispatched(self, person: str) -> None:
        self._set(person, PENDING)

    def released(self, person: str) -> None:
        """Its lane stopped before telling the destination: the person is to be handed on."""
        if person in self.states:
            self.counts[self.states.pop(person)] -= 1

    def update(self, person: str, status: str, detail: str) -> None:
        self._set(person, status)
        if detail:
            self.detail = detail

    def _set(self, person: str, status: str) -> None:
        old = self.states.get(person)
        if old is not None:
            self.counts[old] -= 1
        self.states[person] = status
        self.counts[status] += 1

    def summarise(self, step: Step) -> None:
        """Write the people's states into the part of the request's step for the connection."""
        counts = self.counts
        step.count = counts[DONE]
        if sum(counts[s] for s in TERMINAL) == len(self.people):
            if counts[FAILED]:
                step.status = FAILED
            elif counts[DONE]:
                step.status = DONE
            else:
                step.status = NOT_SUPPORTED
        elif counts[RETRYING]:
            step.status = RETRYING
        else:
            step.status = PENDING
        step.detail = self.detail
