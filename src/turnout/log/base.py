"""The durable event log's contract, kept by every backend (SQLite embedded, NATS JetStream).

The log is the only place a backlog lives. Ingest appends and is answered only once the append is
committed; each delivery lane reads the log in order from its own committed position, and moves
that position only past messages it has resolved. These two rules are what make "nothing
acknowledged is lost" true across crashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored message. `offset` grows with every append and is never reused."""

    offset: int
    source: str
    person: str
    payload: bytes  # the encoded `turnout.spec.message.Message`
    appended_at: float  # unix seconds


class NewEntry(NamedTuple):
    """A message to append. A tuple: ingest makes one per message, a frozen dataclass costs 3x."""

    source: str
    person: str
    payload: bytes


class LogFull(Exception):
    """The log cannot take more now (disk full, backlog over its bound): shed load, lose nothing."""


class EventLog(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, entries: list[NewEntry]) -> None:
        """Return only once every entry is durably committed; raise `LogFull` otherwise."""
        ...

    async def read(self, after: int, limit: int) -> list[Entry]:
        """Entries with offset > `after`, in offset order."""
        ...

    async def read_person(self, person: str, after: int, limit: int) -> list[Entry]:
        """One person's entries with offset > `after`, in order (for a lane's spilled people)."""
        ...

    async def wait_for_new(self, after: int, timeout: float) -> None:
        """Return when an entry past `after` may exist, or after `timeout` seconds."""
        ...

    async def position(self, lane: str) -> int:
        """The lane's committed position: every offset <= it is resolved for the lane."""
        ...

    async def commit_position(self, lane: str, offset: int) -> None: ...

    async def reset_position(self, lane: str, offset: int) -> None:
        """Move a lane back (replay from a point in time) or forward (skip)."""
        ...

    async def offset_at(self, unix_time: float) -> int:
        """The last offset appended before `unix_time` (for "re-deliver since ...")."""
        ...

    async def head(self) -> int:
        """The newest offset, 0 when empty."""
        ...

    async def stats(self) -> LogStats: ...

    async def trim(self, before_offset: int, older_than: float) -> int:
        """Drop entries below `before_offset` appended before `older_than`; return the count."""
        ...


@dataclass(frozen=True, slots=True)
class LogStats:
    entries: int
    head: int
    oldest_offset: int
    oldest_appended_at: float | None
    size_bytes: int


class PartitionedLog(EventLog, Protocol):
    """A log split into partitions by person, each with its own positions: what delivery runs on.

    A person's messages all go to one partition, in order, so a partition's lanes keep every
    person's order on their own and partitions can be delivered by different processes. The
    embedded SQLite log is one partition (itself); the NATS log has `[log] partitions`.
    """

    partitions: int

    def partition(self, partition: int) -> EventLog:
        """The log a lane of this partition reads; positions in it are the partition's own."""
        ...

    def partition_of(self, person: str) -> int:
        """The partition holding this person's messages, in [0, partitions)."""
        ...
