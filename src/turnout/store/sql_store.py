"""The store's queries, written once for both backends (SQLite embedded, PostgreSQL shared).

Why a base class: both backends keep the same tables and answer every call with the same SQL.
They differ in how a statement reaches the database (SQLite: one writer thread and one reader
thread; PostgreSQL: a small pool of psycopg async connections), in their schema's column types,
and in how renaming a source locks rows. So the SQL lives here, with `?` placeholders, and each
backend supplies `_read`, `_many` and those few differing parts (PostgreSQL translates the
placeholders to psycopg's).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from turnout.store.models import (
    Connection,
    DeadLetter,
    DeliveryRecord,
    Fate,
    PlaybookRevision,
    Reject,
    Source,
)
from turnout.store.rows import (
    SecretSettings,
    connection_from_row,
    connection_params,
    dead_letter_from_row,
    dead_letter_params,
    delivery_from_row,
    delivery_params,
    fate_count_params,
    playbook_revision_from_row,
    playbook_revision_params,
    reject_from_row,
    reject_params,
    source_from_row,
)
from turnout.store.secrets import SecretBox

# "offset" is quoted: a reserved word in PostgreSQL (SQLite takes it quoted or not).
_CONNECTION_COLUMNS = (
    "name, destination, settings, sources, enabled, rate_limit, origin, updated_at"
)
_DELIVERY_COLUMNS = (
    'connection, "offset", message_id, person, fate, detail, attempts, request, response,'
    " updated_at, playbook_revision"
)
_REVISION_COLUMNS = (
    "connection, number, created_at, origin, rules, consent, consent_missing, diff, note"
)
_LETTER_COLUMNS = (
    'id, connection, "offset", message_id, person, reason, request, response, payload,'
    " created_at, replayed_at"
)

Statements = Iterable[tuple[str, Sequence[Sequence[Any]]]]
FATES_PER_QUERY = 500  # message ids per `fates` query (SQLite allows 32,766 parameters)


class SqlStore(ABC):
    """What both stores share; a backend provides the connection handling (see module doc)."""

    def __init__(self, box: SecretBox, secret_fields: Callable[[str], frozenset[str]]) -> None:
        self._settings = SecretSettings(box, secret_fields)
        self.sources_by_key: dict[str, Source] = {}

    # -- what a backend provides -------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows one query returns."""

    @abstractmethod
    async def _many(self, statements: Statements) -> None:
        """Run each statement once per parameter row, all in one transaction; a statement with
        no rows is skipped."""

    async def _exec(self, sql: str, params: Sequence[Any]) -> None:
        """One statement, once (a backend may run it without an explicit transaction)."""
        await self._many([(sql, [params])])

    @abstractmethod
    async def rename_source(self, old: str, new: str) -> None:
        """Rename a source, and in every connection's source list (locking differs)."""

    # -- sources -----------------------------------------------------------------------------

    async def _refresh_sources(self) -> None:
        sources = await self.list_sources()
        self.sources_by_key = {s.write_key: s for s in sources}

    async def list_sources(self) -> list[Source]:
        rows = await self._read("SELECT name, write_key, created_at FROM sources ORDER BY name")
        return [source_from_row(row) for row in rows]

    async def put_source(self, source: Source) -> None:
        """Create or update a source by name (a new write key replaces the old one)."""
        source.created_at = source.created_at or time.time()
        await self._exec(
            "INSERT INTO sources (name, write_key, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET write_key = excluded.write_key",
            (source.name, source.write_key, source.created_at),
        )
        await self._refresh_sources()

    async def delete_source(self, name: str) -> None:
        await self._exec("DELETE FROM sources WHERE name = ?", (name,))
        await self._refresh_sources()

    # -- connections -------------------------------------------------------------------------

    async def list_connections(self) -> list[Connection]:
        rows = await self._read(f"SELECT {_CONNECTION_COLUMNS} FROM connections ORDER BY name")
        return [connection_from_row(row, self._settings) for row in rows]

    async def get_connection(self, name: str) -> Connection | None:
        for connection in await self.list_connections():
            if connection.name == name:
                return connection
        return None

    async def put_connection(self, connection: Connection) -> None:
        connection.updated_at = time.time()
        await self._exec(
            f"INSERT INTO connections ({_CONNECTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET destination = excluded.destination,"
            " settings = excluded.settings, sources = excluded.sources,"
            " enabled = excluded.enabled, rate_limit = excluded.rate_limit,"
            " origin = excluded.origin, updated_at = excluded.updated_at",
            connection_params(connection, self._settings),
        )

    async def delete_connection(self, name: str) -> None:
        await self._exec("DELETE FROM connections WHERE name = ?", (name,))

    async def forget_connection(self, name: str) -> None:
        """Drop a deleted connection's records, so a new connection of the same name starts
        clean (a lane skips offsets already recorded under its name)."""
        await self._many(
            (f"DELETE FROM {table} WHERE connection = ?", [(name,)])
            for table in ("deliveries", "fate_counts", "dead_letters", "playbook_revisions")
        )

    # -- delivery records --------------------------------------------------------------------

    async def record(self, records: list[DeliveryRecord]) -> None:
        """Upsert each message's fate and count it (one transaction for the whole list)."""
        if not records:
            return
        now = time.time()
        await self._many(
            [
                (
                    f"INSERT INTO deliveries ({_DELIVERY_COLUMNS})"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                    ' ON CONFLICT (connection, "offset") DO UPDATE SET fate = excluded.fate,'
                    " detail = excluded.detail, attempts = excluded.attempts,"
                    " request = excluded.request, response = excluded.response,"
                    " updated_at = excluded.updated_at,"
                    " playbook_revision = excluded.playbook_revision",
                    delivery_params(records, now),
                ),
                (
                    "INSERT INTO fate_counts (connection, minute, fate, count) VALUES (?,?,?,?)"
                    " ON CONFLICT (connection, minute, fate)"
                    " DO UPDATE SET count = fate_counts.count + excluded.count",
                    fate_count_params(records, int(now // 60)),
                ),
            ]
        )

    async def delivered_offsets(self, connection: str, after: int, upto: int) -> set[int]:
        """Offsets in (after, upto] already resolved for the connection, so that a lane
        resuming after a crash does not send them again."""
        rows = await self._read(
            'SELECT "offset" FROM deliveries WHERE connection = ? AND "offset" > ?'
            ' AND "offset" <= ? AND fate != ?',
            (connection, after, upto, Fate.RETRYING.value),
        )
        return {int(row[0]) for row in rows}

    async def trace(self, message_id: str) -> list[DeliveryRecord]:
        rows = await self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY connection",
            (message_id,),
        )
        return [delivery_from_row(row) for row in rows]

    async def fates(self, message_ids: Sequence[str]) -> list[DeliveryRecord]:
        """Every connection's record of each of these messages (a page of calls at once: one
        query per FATES_PER_QUERY ids, not one per message)."""
        unique = list(dict.fromkeys(message_ids))
        found: list[DeliveryRecord] = []
        for start in range(0, len(unique), FATES_PER_QUERY):
            ids = unique[start : start + FATES_PER_QUERY]
            rows = await self._read(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
                f" WHERE message_id IN ({', '.join('?' * len(ids))})"
                ' ORDER BY connection, "offset"',
                ids,
            )
            found.extend(delivery_from_row(row) for row in rows)
        return found

    async def fate_totals(self, connection: str, since: float = 0.0) -> dict[str, int]:
        rows = await self._read(
            "SELECT fate, SUM(count) FROM fate_counts WHERE connection = ? AND minute >= ?"
            " GROUP BY fate",
            (connection, int(since // 60)),
        )
        return {fate: int(n) for fate, n in rows}

    async def fate_series(self, connection: str, since: float) -> list[tuple[int, str, int]]:
        """(minute, fate, count) from `since` on, oldest first: the overview's rate chart."""
        rows = await self._read(
            "SELECT minute, fate, count FROM fate_counts WHERE connection = ? AND minute >= ?"
            " ORDER BY minute",
            (connection, int(since // 60)),
        )
        return [(int(m), str(f), int(n)) for m, f, n in rows]

    async def current_fates(self, connection: str, since: float) -> dict[str, int]:
        """Messages touched since `since`, by where each stands now (one per message, unlike
        `fate_totals`, which counts every attempt)."""
        rows = await self._read(
            "SELECT fate, COUNT(*) FROM deliveries WHERE connection = ? AND updated_at >= ?"
            " GROUP BY fate",
            (connection, since),
        )
        return {str(fate): int(n) for fate, n in rows}

    async def filtered_by(self, connection: str, since: float) -> dict[str, int]:
        """Messages filtered since `since`, by who filtered them: `consent`, `playbook` (a
        rule) or `destination` (its own filters), from the reason each was recorded with."""
        rows = await self._read(
            "SELECT CASE WHEN detail LIKE 'consent:%' THEN 'consent'"
            " WHEN detail LIKE 'playbook%' THEN 'playbook' ELSE 'destination' END AS who,"
            " COUNT(*) FROM deliveries WHERE connection = ? AND updated_at >= ? AND fate = ?"
            " GROUP BY who",
            (connection, since, Fate.FILTERED.value),
        )
        return {str(who): int(n) for who, n in rows}

    async def failure_details(
        self, connection: str, since: float, limit: int = 2000
    ) -> list[tuple[str, str, str, float]]:
        """(fate, detail, message_id, updated_at) of retrying and dead-lettered messages since
        `since`, newest first; the caller groups them into reasons."""
        rows = await self._read(
            "SELECT fate, detail, message_id, updated_at FROM deliveries"
            " WHERE connection = ? AND updated_at >= ? AND fate IN (?, ?)"
            " ORDER BY updated_at DESC LIMIT ?",
            (connection, since, Fate.RETRYING.value, Fate.DEAD.value, limit),
        )
        return [(str(f), str(d), str(m), float(u)) for f, d, m, u in rows]

    # -- playbook revisions ------------------------------------------------------------------

    # Errors a backend's driver raises when an insert collides with a key (two processes saving
    # a revision of the same connection at once): the next number is tried.
    _conflict_errors: tuple[type[Exception], ...] = ()

    async def playbook_revisions(self, connection: str) -> list[PlaybookRevision]:
        """The connection's revisions, newest first."""
        rows = await self._read(
            f"SELECT {_REVISION_COLUMNS} FROM playbook_revisions WHERE connection = ?"
            " ORDER BY number DESC",
            (connection,),
        )
        return [playbook_revision_from_row(row) for row in rows]

    async def playbook_revision(
        self, connection: str, number: int | None = None
    ) -> PlaybookRevision | None:
        """One revision by number; the current (newest) one when `number` is None."""
        if number is None:
            sql = (
                f"SELECT {_REVISION_COLUMNS} FROM playbook_revisions WHERE connection = ?"
                " ORDER BY number DESC LIMIT 1"
            )
            rows = await self._read(sql, (connection,))
        else:
            sql = (
                f"SELECT {_REVISION_COLUMNS} FROM playbook_revisions"
                " WHERE connection = ? AND number = ?"
            )
            rows = await self._read(sql, (connection, number))
        return playbook_revision_from_row(rows[0]) if rows else None

    async def current_playbook_revisions(self) -> dict[str, int]:
        """Every connection's current revision number (a cheap poll for changes)."""
        rows = await self._read(
            "SELECT connection, MAX(number) FROM playbook_revisions GROUP BY connection"
        )
        return {str(name): int(number) for name, number in rows}

    async def add_playbook_revision(self, revision: PlaybookRevision) -> PlaybookRevision:
        """Save `revision` as the connection's next one; its `number` and `created_at` are set
        here."""
        for _ in range(10):
            current = await self.playbook_revision(revision.connection)
            revision.number = (current.number if current else 0) + 1
            revision.created_at = time.time()
            try:
                await self._exec(
                    f"INSERT INTO playbook_revisions ({_REVISION_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    playbook_revision_params(revision),
                )
            except self._conflict_errors:
                continue  # another process took this number: take the next
            return revision
        raise RuntimeError(f"could not number a playbook revision of {revision.connection!r}")

    # -- dead letters ------------------------------------------------------------------------

    async def add_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        await self._many(
            [
                (
                    'INSERT INTO dead_letters (connection, "offset", message_id, person, reason,'
                    " request, response, payload, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    dead_letter_params(letters),
                )
            ]
        )

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
    ) -> list[DeadLetter]:
        where, params = _letter_filter(
            connection, since, until, reason, message_id, include_replayed
        )
        rows = await self._read(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE {where} ORDER BY id LIMIT ?",
            (*params, limit),
        )
        return [dead_letter_from_row(row) for row in rows]

    async def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        """One dead letter by id, replayed or not (the inspect page links to it by id)."""
        rows = await self._read(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
        )
        return dead_letter_from_row(rows[0]) if rows else None

    async def mark_replayed(self, ids: list[int]) -> None:
        now = time.time()
        await self._many(
            [("UPDATE dead_letters SET replayed_at = ? WHERE id = ?", [(now, i) for i in ids])]
        )

    async def replayed_count(self, connection: str, since: float) -> int:
        """Dead letters of the connection replayed successfully since `since`."""
        rows = await self._read(
            "SELECT COUNT(*) FROM dead_letters WHERE connection = ? AND replayed_at >= ?",
            (connection, since),
        )
        return int(rows[0][0])

    # -- rejects -----------------------------------------------------------------------------

    async def add_rejects(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        await self._many(
            [
                (
                    "INSERT INTO rejects (source, code, message, payload, created_at)"
                    " VALUES (?,?,?,?,?)",
                    reject_params(rejects),
                )
            ]
        )

    async def rejects(self, limit: int = 100) -> list[Reject]:
        rows = await self._read(
            "SELECT id, source, code, message, payload, created_at FROM rejects"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [reject_from_row(row) for row in rows]

    # -- retention ---------------------------------------------------------------------------

    async def trim(self, older_than: float) -> None:
        await self._many(
            [
                ("DELETE FROM deliveries WHERE updated_at < ?", [(older_than,)]),
                ("DELETE FROM rejects WHERE created_at < ?", [(older_than,)]),
                ("DELETE FROM fate_counts WHERE minute < ?", [(int(older_than // 60),)]),
            ]
        )


def _letter_filter(
    connection: str | None,
    since: float | None,
    until: float | None,
    reason: str | None,
    message_id: str | None,
    include_replayed: bool,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of a dead-letter search; `reason` is a substring."""
    where: list[str] = ["1=1"]
    params: list[Any] = []
    for clause, value in (
        ("connection = ?", connection),
        ("created_at >= ?", since),
        ("created_at <= ?", until),
        ("message_id = ?", message_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if reason:
        where.append("reason LIKE ?")
        params.append(f"%{reason}%")
    if not include_replayed:
        where.append("replayed_at IS NULL")
    return " AND ".join(where), params
