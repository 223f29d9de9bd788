"""Configuration and delivery state in PostgreSQL, shared by every Turnout process.

Same methods and meaning as the SQLite `Store`. What differs, and why:
- Several processes write at once, so upserts that touch shared rows (the per-minute fate
  counts) are sorted by key: concurrent transactions then lock rows in the same order and never
  deadlock.
- Sources may be created by another process's dashboard, so the in-memory write-key map that
  ingest authenticates against is refreshed every few seconds, not only after a local change.
- Secrets are sealed with the Fernet key of the process that saved them: every process must be
  given the same `[server] secret_key` (the app refuses to start on PostgreSQL without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import psycopg

from turnout.store.models import Connection, DeadLetter, DeliveryRecord, Fate, Reject, Source
from turnout.store.secrets import SecretBox

log = logging.getLogger("turnout.store")

POOL_SIZE = 4
SOURCES_REFRESH = 2.0  # seconds between reloads of the write keys ingest accepts
REJECT_PAYLOAD_KEEP = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    write_key TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    name TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    settings TEXT NOT NULL,
    sources TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    rate_limit DOUBLE PRECISION,
    origin TEXT NOT NULL DEFAULT 'store',
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    connection TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    fate TEXT NOT NULL,
    detail TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (connection, "offset")
);
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (updated_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGSERIAL PRIMARY KEY,
    connection TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    reason TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    replayed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS dead_letters_by_connection ON dead_letters (connection, created_at);
CREATE TABLE IF NOT EXISTS rejects (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS fate_counts (
    connection TEXT NOT NULL,
    minute BIGINT NOT NULL,
    fate TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (connection, minute, fate)
);
"""

_LETTER_COLUMNS = (
    'id, connection, "offset", message_id, person, reason, request, response, payload,'
    " created_at, replayed_at"
)


class PostgresStore:
    """`StateStore` on PostgreSQL (psycopg 3, async), for Turnout on several machines."""

    def __init__(
        self,
        url: str,
        box: SecretBox,
        secret_fields: Callable[[str], frozenset[str]],
        *,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.url = url
        self._box = box
        self._secret_fields = secret_fields
        self._pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []
        self._refresher: asyncio.Task[None] | None = None
        self.sources_by_key: dict[str, Source] = {}

    async def start(self) -> None:
        for _ in range(self._pool_size):
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            self._all.append(conn)
            self._idle.put_nowait(conn)
        # One process creates the schema; the others wait on the lock rather than race.
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7147720)")
            await conn.execute(_SCHEMA)
        await self._refresh_sources()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="store-sources")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for conn in self._all:
            await conn.close()
        self._all.clear()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._idle.get()
        try:
            if conn.closed:  # the database restarted: reconnect once, transparently
                self._all.remove(conn)
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                self._all.append(conn)
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._conn() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return list(await cursor.fetchall())

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> None:
        async with self._conn() as conn:
            await conn.execute(sql, tuple(params))

    async def _many(self, statements: Iterable[tuple[str, list[Sequence[Any]]]]) -> None:
        """Several statements with many rows each, in one transaction."""
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cursor:
            for sql, rows in statements:
                if rows:
                    await cursor.executemany(sql, rows)

    # -- sources -----------------------------------------------------------------------------

    async def _refresh_sources(self) -> None:
        sources = await self.list_sources()
        self.sources_by_key = {s.write_key: s for s in sources}

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(SOURCES_REFRESH)
            try:
                await self._refresh_sources()
            except Exception as exc:  # keep the last known keys; ingest goes on meanwhile
                log.warning("could not reload sources from PostgreSQL: %r", exc)

    async def list_sources(self) -> list[Source]:
        rows = await self._read("SELECT name, write_key, created_at FROM sources ORDER BY name")
        return [Source(*row) for row in rows]

    async def put_source(self, source: Source) -> None:
        source.created_at = source.created_at or time.time()
        await self._exec(
            "INSERT INTO sources (name, write_key, created_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET write_key = excluded.write_key",
            (source.name, source.write_key, source.created_at),
        )
        await self._refresh_sources()

    async def rename_source(self, old: str, new: str) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("UPDATE sources SET name = %s WHERE name = %s", (new, old))
            cursor = await conn.execute("SELECT name, sources FROM connections FOR UPDATE")
            for name, sources in await cursor.fetchall():
                names = [new if s == old else s for s in json.loads(sources)]
                await conn.execute(
                    "UPDATE connections SET sources = %s WHERE name = %s",
                    (json.dumps(names), name),
                )
        await self._refresh_sources()

    async def delete_source(self, name: str) -> None:
        await self._exec("DELETE FROM sources WHERE name = %s", (name,))
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
        await self._exec(
            "INSERT INTO connections (name, destination, settings, sources, enabled,"
            " rate_limit, origin, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET destination = excluded.destination,"
            " settings = excluded.settings, sources = excluded.sources,"
            " enabled = excluded.enabled, rate_limit = excluded.rate_limit,"
            " origin = excluded.origin, updated_at = excluded.updated_at",
            (
                connection.name,
                connection.destination,
                self._seal(connection),
                json.dumps(connection.sources),
                connection.enabled,
                connection.rate_limit,
                connection.origin,
                connection.updated_at,
            ),
        )

    async def delete_connection(self, name: str) -> None:
        await self._exec("DELETE FROM connections WHERE name = %s", (name,))

    async def forget_connection(self, name: str) -> None:
        await self._many(
            (f"DELETE FROM {table} WHERE connection = %s", [(name,)])
            for table in ("deliveries", "fate_counts", "dead_letters")
        )

    # -- delivery records --------------------------------------------------------------------

    async def record(self, records: list[DeliveryRecord]) -> None:
        if not records:
            return
        now = time.time()
        minute = int(now // 60)
        latest: dict[tuple[str, int], DeliveryRecord] = {}
        for r in records:  # one row may be touched twice in a batch: the last fate wins
            latest[(r.connection, r.offset)] = r
        counts: dict[tuple[str, str], int] = {}
        for r in records:
            counts[(r.connection, r.fate.value)] = counts.get((r.connection, r.fate.value), 0) + 1
        await self._many(
            [
                (
                    'INSERT INTO deliveries (connection, "offset", message_id, person, fate,'
                    " detail, attempts, request, response, updated_at)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                    ' ON CONFLICT (connection, "offset") DO UPDATE SET fate = excluded.fate,'
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
                        for _, r in sorted(latest.items())
                    ],
                ),
                (
                    "INSERT INTO fate_counts (connection, minute, fate, count)"
                    " VALUES (%s,%s,%s,%s) ON CONFLICT (connection, minute, fate)"
                    " DO UPDATE SET count = fate_counts.count + excluded.count",
                    [(c, minute, f, n) for (c, f), n in sorted(counts.items())],
                ),
            ]
        )

    async def delivered_offsets(self, connection: str, after: int, upto: int) -> set[int]:
        rows = await self._read(
            'SELECT "offset" FROM deliveries WHERE connection = %s AND "offset" > %s'
            ' AND "offset" <= %s AND fate != %s',
            (connection, after, upto, Fate.RETRYING.value),
        )
        return {int(row[0]) for row in rows}

    async def trace(self, message_id: str) -> list[DeliveryRecord]:
        rows = await self._read(
            'SELECT connection, "offset", message_id, person, fate, detail, attempts, request,'
            " response, updated_at FROM deliveries WHERE message_id = %s ORDER BY connection",
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
            "SELECT fate, SUM(count) FROM fate_counts WHERE connection = %s AND minute >= %s"
            " GROUP BY fate",
            (connection, int(since // 60)),
        )
        return {fate: int(n) for fate, n in rows}

    async def fate_series(self, connection: str, since: float) -> list[tuple[int, str, int]]:
        rows = await self._read(
            "SELECT minute, fate, count FROM fate_counts WHERE connection = %s AND minute >= %s"
            " ORDER BY minute",
            (connection, int(since // 60)),
        )
        return [(int(m), str(f), int(n)) for m, f, n in rows]

    async def current_fates(self, connection: str, since: float) -> dict[str, int]:
        rows = await self._read(
            "SELECT fate, COUNT(*) FROM deliveries WHERE connection = %s AND updated_at >= %s"
            " GROUP BY fate",
            (connection, since),
        )
        return {str(fate): int(n) for fate, n in rows}

    async def failure_details(
        self, connection: str, since: float, limit: int = 2000
    ) -> list[tuple[str, str, str, float]]:
        rows = await self._read(
            "SELECT fate, detail, message_id, updated_at FROM deliveries"
            " WHERE connection = %s AND updated_at >= %s AND fate IN (%s, %s)"
            " ORDER BY updated_at DESC LIMIT %s",
            (connection, since, Fate.RETRYING.value, Fate.DEAD.value, limit),
        )
        return [(str(f), str(d), str(m), float(u)) for f, d, m, u in rows]

    # -- dead letters ------------------------------------------------------------------------

    async def add_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        await self._many(
            [
                (
                    'INSERT INTO dead_letters (connection, "offset", message_id, person, reason,'
                    " request, response, payload, created_at)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
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
        where, params = ["TRUE"], []
        for clause, value in (
            ("connection = %s", connection),
            ("created_at >= %s", since),
            ("created_at <= %s", until),
            ("message_id = %s", message_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if reason:
            where.append("reason LIKE %s")
            params.append(f"%{reason}%")
        if not include_replayed:
            where.append("replayed_at IS NULL")
        rows = await self._read(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT %s",
            (*params, limit),
        )
        return [_letter(row) for row in rows]

    async def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        rows = await self._read(
            f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = %s", (letter_id,)
        )
        return _letter(rows[0]) if rows else None

    async def mark_replayed(self, ids: list[int]) -> None:
        now = time.time()
        await self._many(
            [("UPDATE dead_letters SET replayed_at = %s WHERE id = %s", [(now, i) for i in ids])]
        )

    async def replayed_count(self, connection: str, since: float) -> int:
        rows = await self._read(
            "SELECT COUNT(*) FROM dead_letters WHERE connection = %s AND replayed_at >= %s",
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
                    " VALUES (%s,%s,%s,%s,%s)",
                    [
                        (r.source, r.code, r.message, r.payload[:REJECT_PAYLOAD_KEEP], r.created_at)
                        for r in rejects
                    ],
                )
            ]
        )

    async def rejects(self, limit: int = 100) -> list[Reject]:
        rows = await self._read(
            "SELECT id, source, code, message, payload, created_at FROM rejects"
            " ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [Reject(*row) for row in rows]

    # -- retention ---------------------------------------------------------------------------

    async def trim(self, older_than: float) -> None:
        await self._many(
            [
                ("DELETE FROM deliveries WHERE updated_at < %s", [(older_than,)]),
                ("DELETE FROM rejects WHERE created_at < %s", [(older_than,)]),
                ("DELETE FROM fate_counts WHERE minute < %s", [(int(older_than // 60),)]),
            ]
        )


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    values = list(row)
    values[8] = bytes(values[8])  # BYTEA arrives as bytes already; memoryview on some setups
    return DeadLetter(*values)
