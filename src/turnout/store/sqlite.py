"""Configuration and delivery state in one SQLite file (the embedded default).

All writes go through one thread (SQLite has one writer at a time, and a single thread needs no
locks); reads use their own connection and run beside the writes thanks to WAL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from turnout.store.models import Connection, DeadLetter, DeliveryRecord, Fate, Reject, Source
from turnout.store.secrets import SecretBox

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    write_key TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    name TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    settings TEXT NOT NULL,
    sources TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    rate_limit REAL,
    origin TEXT NOT NULL DEFAULT 'store',
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    connection TEXT NOT NULL,
    offset INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    fate TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (connection, offset)
);
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (updated_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection TEXT NOT NULL,
    offset INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    reason TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    replayed_at REAL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_connection ON dead_letters (connection, created_at);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fate_counts (
    connection TEXT NOT NULL,
    minute INTEGER NOT NULL,
    fate TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (connection, minute, fate)
);
"""

REJECT_PAYLOAD_KEEP = 4096  # keep enough of a refused call to see what was wrong with it


class Store:
    def __init__(
        self,
        path: Path,
        box: SecretBox,
        secret_fields: Callable[[str], frozenset[str]],
    ) -> None:
        self.path = path
        self._box = box
        self._secret_fields = secret_fields
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turnout-store-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turnout-store-r")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self.sources_by_key: dict[str, Source] = {}

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_conn = self._connect()
        self._write_conn.executescript(_SCHEMA)
        self._read_conn = self._connect()
        await self._refresh_sources()

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        for conn in (self._write_conn, self._read_conn):
            if conn is not None:
                conn.close()

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        assert self._write_conn is not None
        conn = self._write_conn

        def run() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        assert self._read_conn is not None
        conn = self._read_conn
        args = tuple(params)
        return await asyncio.get_running_loop().run_in_executor(
            self._reader, lambda: conn.execute(sql, args).fetchall()
        )

    # -- sources -----------------------------------------------------------------------------

    async def _refresh_sources(self) -> None:
        sources = await self.list_sources()
        self.sources_by_key = {s.write_key: s for s in sources}

    async def list_sources(self) -> list[Source]:
        rows = await self._read("SELECT name, write_key, created_at FROM sources ORDER BY name")
        return [Source(*row) for row in rows]

    async def put_source(self, source: Source) -> None:
        """Create or update a source by name (a new write key replaces the old one)."""
        source.created_at = source.created_at or time.time()
        await self._write(
            lambda c: c.execute(
                "INSERT INTO sources (name, write_key, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET write_key = excluded.write_key",
                (source.name, source.write_key, source.created_at),
            )
        )
        await self._refresh_sources()

    async def rename_source(self, old: str, new: str) -> None:
        def rename(c: sqlite3.Connection) -> None:
            c.execute("UPDATE sources SET name = ? WHERE name = ?", (new, old))
            for name, sources in c.execute("SELECT name, sources FROM connections").fetchall():
                names = [new if s == old else s for s in json.loads(sources)]
                c.execute(
                    "UPDATE connections SET sources = ? WHERE name = ?", (json.dumps(names), name)
                )

        await self._write(rename)
        await self._refresh_sources()

    async def delete_source(self, name: str) -> None:
        await self._write(lambda c: c.execute("DELETE FROM sources WHERE name = ?", (name,)))
        await self._refresh_sources()

    # -- connections -------------------------------------------------------------------------

    def _seal(self, connection: Connection) -> str:
        secret = self._secret_fields(connection.destination)
        sealed = {
            k: self._box.seal(v) if k in secret and isinstance(v, str) and v else v
            for k, v in connection.settings.items()
        }
        return json.dumps(sealed)

    def _open(self, destination: str, text: str) -> dict[str, Any]:
        secret = self._secret_fields(destination)
        return {
            k: self._box.open(v) if k in secret and isinstance(v, str) else v
            for k, v in json.loads(text).items()
        }

    async def list_connections(self) -> list[Connection]:
        rows = await self._read(
            "SELECT name, destination, settings, sources, enabled, rate_limit, origin, updated_at"
            " FROM connections ORDER BY name"
        )
        return [
            Connection(
                name=name,
                destination=dest,
                settings=self._open(dest, settings),
                sources=json.loads(sources),
                enabled=bool(enabled),
                rate_limit=rate,
                origin=origin,
                updated_at=updated,
            )
            for name, dest, settings, sources, enabled, rate, origin, updated in rows
        ]

    async def get_connection(self, name: str) -> Connection | None:
        for connection in await self.list_connections():
            if connection.name == name:
                return connection
        return None

    async def put_connection(self, connection: Connection) -> None:
        connection.updated_at = time.time()
        sealed = self._seal(connection)
        await self._write(
            lambda c: c.execute(
                "INSERT INTO connections (name, destination, settings, sources, enabled,"
                " rate_limit, origin, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET destination = excluded.destination,"
                " settings = excluded.settings, sources = excluded.sources,"
                " enabled = excluded.enabled, rate_limit = excluded.rate_limit,"
                " origin = excluded.origin, updated_at = excluded.updated_at",
                (
                    connection.name,
                    connection.destination,
                    sealed,
                    json.dumps(connection.sources),
                    int(connection.enabled),
                    connection.rate_limit,
                    connection.origin,
                    connection.updated_at,
                ),
            )
        )

    async def delete_connection(self, name: str) -> None:
        await self._write(lambda c: c.execute("DELETE FROM connections WHERE name = ?", (name,)))

    # -- delivery records --------------------------------------------------------------------

    async def record(self, records: list[DeliveryRecord]) -> None:
        """Upsert each message's fate and count it (one transaction for the whole list)."""
        if not records:
            return
        now = time.time()
        minute = int(now // 60)

        def write(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT INTO deliveries (connection, offset, message_id, person, fate, detail,"
                " attempts, request, response, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (connection, offset) DO UPDATE SET fate = excluded.fate,"
                " detail = excluded.detail, attempts = excluded.attempts,"
                " request = excluded.request, response = excluded.response,"
                " updated_at = excluded.updated_at",
                [
                    (
                        r.connection,
                        r.offset,
                        r.message_id,
                        r.person,
                        r.fate.value,
                        r.detail,
                        r.attempts,
                        r.request,
                        r.response,
                        now,
                    )
                    for r in records
                ],
            )
            counts: dict[tuple[str, str], int] = {}
            for r in records:
                key = (r.connection, r.fate.value)
                counts[key] = counts.get(key, 0) + 1
            c.executemany(
                "INSERT INTO fate_counts (connection, minute, fate, count) VALUES (?,?,?,?)"
                " ON CONFLICT (connection, minute, fate)"
                " DO UPDATE SET count = count + excluded.count",
                [(conn, minute, fate, n) for (conn, fate), n in counts.items()],
            )

        await self._write(write)

    async def delivered_offsets(self, connection: str, after: int, upto: int) -> set[int]:
        """Offsets in (after, upto] already resolved for the connection, so that a lane
        resuming after a crash does not send them again."""
        rows = await self._read(
            "SELECT offset FROM deliveries WHERE connection = ? AND offset > ? AND offset <= ?"
            " AND fate != ?",
            (connection, after, upto, Fate.RETRYING.value),
        )
        return {row[0] for row in rows}

    async def trace(self, message_id: str) -> list[DeliveryRecord]:
        rows = await self._read(
            "SELECT connection, offset, message_id, person, fate, detail, attempts, request,"
            " response, updated_at FROM deliveries WHERE message_id = ? ORDER BY connection",
            (message_id,),
        )
        return [
            DeliveryRecord(
                connection=r[0],
                offset=r[1],
                message_id=r[2],
                person=r[3],
                fate=Fate(r[4]),
                detail=r[5],
                attempts=r[6],
                request=r[7],
                response=r[8],
                updated_at=r[9],
            )
            for r in rows
        ]

    async def fate_totals(self, connection: str, since: float = 0.0) -> dict[str, int]:
        rows = await self._read(
            "SELECT fate, SUM(count) FROM fate_counts WHERE connection = ? AND minute >= ?"
            " GROUP BY fate",
            (connection, int(since // 60)),
        )
        return {fate: int(n) for fate, n in rows}

    # -- dead letters ------------------------------------------------------------------------

    async def add_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        await self._write(
            lambda c: c.executemany(
                "INSERT INTO dead_letters (connection, offset, message_id, person, reason,"
                " request, response, payload, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        d.connection,
                        d.offset,
                        d.message_id,
                        d.person,
                        d.reason,
                        d.request,
                        d.response,
                        d.payload,
                        d.created_at or time.time(),
                    )
                    for d in letters
                ],
            )
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
        where, params = ["1=1"], []
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
        rows = await self._read(
            "SELECT id, connection, offset, message_id, person, reason, request, response,"
            f" payload, created_at, replayed_at FROM dead_letters WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT ?",
            (*params, limit),
        )
        return [DeadLetter(*row) for row in rows]

    async def mark_replayed(self, ids: list[int]) -> None:
        now = time.time()
        await self._write(
            lambda c: c.executemany(
                "UPDATE dead_letters SET replayed_at = ? WHERE id = ?", [(now, i) for i in ids]
            )
        )

    # -- rejects -----------------------------------------------------------------------------

    async def add_rejects(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        await self._write(
            lambda c: c.executemany(
                "INSERT INTO rejects (source, code, message, payload, created_at)"
                " VALUES (?,?,?,?,?)",
                [
                    (r.source, r.code, r.message, r.payload[:REJECT_PAYLOAD_KEEP], r.created_at)
                    for r in rejects
                ],
            )
        )

    async def rejects(self, limit: int = 100) -> list[Reject]:
        rows = await self._read(
            "SELECT id, source, code, message, payload, created_at FROM rejects"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [Reject(*row) for row in rows]

    # -- retention ---------------------------------------------------------------------------

    async def trim(self, older_than: float) -> None:
        def delete(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM deliveries WHERE updated_at < ?", (older_than,))
            c.execute("DELETE FROM rejects WHERE created_at < ?", (older_than,))
            c.execute("DELETE FROM fate_counts WHERE minute < ?", (int(older_than // 60),))

        await self._write(delete)

    # -- views for the dashboard and the management API (added with web/) --------------------

    async def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        """One dead letter by id, replayed or not (the inspect page links to it by id)."""
        rows = await self._read(
            "SELECT id, connection, offset, message_id, person, reason, request, response,"
            " payload, created_at, replayed_at FROM dead_letters WHERE id = ?",
            (letter_id,),
        )
        return DeadLetter(*rows[0]) if rows else None

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

    async def replayed_count(self, connection: str, since: float) -> int:
        """Dead letters of the connection replayed successfully since `since`."""
        rows = await self._read(
            "SELECT COUNT(*) FROM dead_letters WHERE connection = ? AND replayed_at >= ?",
            (connection, since),
        )
        return int(rows[0][0])

    async def forget_connection(self, name: str) -> None:
        """Drop a deleted connection's records, so a new connection of the same name starts
        clean (a lane skips offsets already recorded under its name)."""

        def delete(c: sqlite3.Connection) -> None:
            for table in ("deliveries", "fate_counts", "dead_letters"):
                c.execute(f"DELETE FROM {table} WHERE connection = ?", (name,))

        await self._write(delete)
