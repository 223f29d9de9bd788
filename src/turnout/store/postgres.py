"""Configuration and delivery state in PostgreSQL, shared by every Turnout process.

Same methods and meaning as the SQLite `Store`. What differs, and why:
- Several processes write at once, so upserts that touch shared rows (the per-minute fate
  counts) are sorted by key: concurrent transactions then lock rows in the same order and never
  deadlock.
- Sources may be created by another process's dashboard, so the in-memory write-key map that
  ingest authenticates against is refreshed every few seconds, not only after a local change.
- Secrets are sealed with the Fernet key of the process that saved them: every process must be
  given the same `[server] secret_key` (the app refuses to start on PostgreSQL without one).
The queries themselves are shared with SQLite (store/sql_store.py), written with `?`
placeholders that `_psycopg` turns into psycopg's `%s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import psycopg

from turnout.store.rows import renamed_sources
from turnout.store.secrets import SecretBox
from turnout.store.sql_store import SqlStore, Statements

logger = logging.getLogger("turnout.store")

POOL_SIZE = 4
SOURCES_REFRESH = 2.0  # seconds between reloads of the write keys ingest accepts

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
CREATE TABLE IF NOT EXISTS playbook_revisions (
    connection TEXT NOT NULL,
    number BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    origin TEXT NOT NULL,
    rules TEXT NOT NULL,
    consent TEXT NOT NULL,
    consent_missing TEXT NOT NULL,
    diff TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (connection, number)
);
-- Columns added after a table's first version (a store created by an older Turnout).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS playbook_revision BIGINT;
"""


class PostgresStore(SqlStore):
    """`StateStore` on PostgreSQL (psycopg 3, async), for Turnout on several machines."""

    _conflict_errors = (psycopg.errors.UniqueViolation,)

    def __init__(
        self,
        url: str,
        box: SecretBox,
        secret_fields: Callable[[str], frozenset[str]],
        *,
        pool_size: int = POOL_SIZE,
    ) -> None:
        super().__init__(box, secret_fields)
        self.url = url
        self._pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection[Any]] = []
        self._refresher: asyncio.Task[None] | None = None

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
            cursor = await conn.execute(_psycopg(sql), tuple(params))
            return list(await cursor.fetchall())

    async def _exec(self, sql: str, params: Sequence[Any]) -> None:
        """One statement in autocommit: no transaction round trips for a single write."""
        async with self._conn() as conn:
            await conn.execute(_psycopg(sql), tuple(params))

    async def _many(self, statements: Statements) -> None:
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cursor:
            for sql, rows in statements:
                if rows:
                    await cursor.executemany(_psycopg(sql), rows)

    # -- sources -----------------------------------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(SOURCES_REFRESH)
            try:
                await self._refresh_sources()
            except Exception as exc:  # keep the last known keys; ingest goes on meanwhile
                logger.warning("could not reload sources from PostgreSQL: %r", exc)

    async def rename_source(self, old: str, new: str) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("UPDATE sources SET name = %s WHERE name = %s", (new, old))
            cursor = await conn.execute("SELECT name, sources FROM connections FOR UPDATE")
            for name, sources in await cursor.fetchall():
                await conn.execute(
                    "UPDATE connections SET sources = %s WHERE name = %s",
                    (renamed_sources(sources, old, new), name),
                )
        await self._refresh_sources()


@functools.lru_cache(maxsize=256)
def _psycopg(sql: str) -> str:
    """The shared SQL with psycopg's placeholders: `?` becomes `%s`, and a literal `%` is
    doubled so psycopg does not take it for one (the shared SQL has no `?` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")
