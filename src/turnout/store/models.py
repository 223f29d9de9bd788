"""What the store keeps: configuration (sources, connections) and each message's fate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class Source:
    """Where calls come from; its write key authenticates the tracking API."""

    name: str
    write_key: str
    created_at: float = 0.0


@dataclass(slots=True)
class Connection:
    """A destination configured for some sources. `settings` hold secrets in plain text in
    memory only; the store encrypts them, and every outward view masks them."""

    name: str
    destination: str
    settings: dict[str, Any]
    sources: list[str]
    enabled: bool = True
    rate_limit: float | None = None  # requests/s; None = the destination's default
    origin: str = "store"  # "file" when declared in turnout.toml (re-applied at start)
    updated_at: float = 0.0


class Fate(StrEnum):
    """Where one message stands for one connection."""

    DELIVERED = "delivered"
    FILTERED = "filtered"
    ADJUSTED = "adjusted"  # delivered, with something cut to fit the destination's limits
    RETRYING = "retrying"
    DEAD = "dead_lettered"

    @property
    def resolved(self) -> bool:
        return self is not Fate.RETRYING


@dataclass(slots=True)
class DeliveryRecord:
    connection: str
    offset: int
    message_id: str
    person: str
    fate: Fate
    detail: str = ""
    attempts: int = 1
    request: str = ""
    response: str = ""
    updated_at: float = 0.0
    playbook_revision: int | None = None  # the revision of the playbook that shaped it


@dataclass(slots=True)
class PlaybookRevision:
    """One saved version of a connection's playbook. Revisions are never changed: saving (from
    the file at start, the API or the dashboard) or rolling back adds the next one, with the
    difference from the one before it."""

    connection: str
    number: int
    created_at: float
    origin: str  # who saved it: "file", "api" or "dashboard"
    rules: list[dict[str, Any]]
    consent: list[str]
    consent_missing: str
    diff: str = ""  # unified diff of the rules against the previous revision ("" for the first)
    note: str = ""  # e.g. "rollback to revision 2"


@dataclass(slots=True)
class DeadLetter:
    id: int
    connection: str
    offset: int
    message_id: str
    person: str
    reason: str
    request: str
    response: str
    payload: bytes
    created_at: float
    replayed_at: float | None = None


@dataclass(slots=True)
class Reject:
    """A call refused at ingest, kept so the user can see why it never entered the log."""

    id: int
    source: str
    code: str
    message: str
    payload: str
    created_at: float
