"""The store's contract, kept by both backends (SQLite embedded, PostgreSQL for several processes).

Why a protocol: delivery, ingest and the web layer only need these methods, and typing them
against the protocol lets one process run on either backend without knowing which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from turnout.store.models import (
    Connection,
    DeadLetter,
    DeliveryRecord,
    PlaybookRevision,
    Reject,
    Source,
)


class StateStore(Protocol):
    @property
    def sources_by_key(self) -> Mapping[str, Source]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # sources
    async def list_sources(self) -> list[Source]: ...

    async def put_source(self, source: Source) -> None: ...

    async def rename_source(self, old: str, new: str) -> None: ...

    async def delete_source(self, name: str) -> None: ...

    # connections
    async def list_connections(self) -> list[Connection]: ...

    async def get_connection(self, name: str) -> Connection | None: ...

    async def put_connection(self, connection: Connection) -> None: ...

    async def delete_connection(self, name: str) -> None: ...

    async def forget_connection(self, name: str) -> None: ...

    # delivery records
    async def record(self, records: list[DeliveryRecord]) -> None: ...

    async def delivered_offsets(self, connection: str, after: int, upto: int) -> set[int]: ...

    async def trace(self, message_id: str) -> list[DeliveryRecord]: ...

    async def fates(self, message_ids: Sequence[str]) -> list[DeliveryRecord]: ...

    async def fate_totals(self, connection: str, since: float = 0.0) -> dict[str, int]: ...

    async def fate_series(self, connection: str, since: float) -> list[tuple[int, str, int]]: ...

    async def current_fates(self, connection: str, since: float) -> dict[str, int]: ...

    async def failure_details(
        self, connection: str, since: float, limit: int = 2000
    ) -> list[tuple[str, str, str, float]]: ...

    async def filtered_by(self, connection: str, since: float) -> dict[str, int]: ...

    # playbook revisions
    async def playbook_revisions(self, connection: str) -> list[PlaybookRevision]: ...

    async def playbook_revision(
        self, connection: str, number: int | None = None
    ) -> PlaybookRevision | None: ...

    async def current_playbook_revisions(self) -> dict[str, int]: ...

    async def add_playbook_revision(self, revision: PlaybookRevision) -> PlaybookRevision: ...

    # dead letters
    async def add_dead_letters(self, letters: list[DeadLetter]) -> None: ...

    async def dead_letters(
        self,
        connection: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        reason: str | None = None,
        message_id: str | None = None,
        include_replayed: bool = False,
        limit: int = 1000,
    ) -> list[DeadLetter]: ...

    async def get_dead_letter(self, letter_id: int) -> DeadLetter | None: ...

    async def mark_replayed(self, ids: list[int]) -> None: ...

    async def replayed_count(self, connection: str, since: float) -> int: ...

    # rejects and retention
    async def add_rejects(self, rejects: list[Reject]) -> None: ...

    async def rejects(self, limit: int = 100) -> list[Reject]: ...

    async def trim(self, older_than: float) -> None: ...


def _check(store: Any) -> StateStore:  # pragma: no cover - a compile-time check only
    from turnout.store.postgres import PostgresStore
    from turnout.store.sqlite import Store

    checked: StateStore = Store.__new__(Store)
    also: StateStore = PostgresStore.__new__(PostgresStore)
    return checked if store else also
