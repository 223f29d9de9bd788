"""Configuration and delivery state in one SQLite file (the embedded default).

All writes go through one thread (SQLite has one writer at a time, and a single thread needs no
locks); reads use their own connection and run beside the writes thanks to WAL. The queries
themselves are shared with PostgreSQL (store/sql_store.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from turnout.datadir import PRIVATE_DIR, create_private
from turnout.store.rows import renamed_sources
from turnout.store.secrets import SecretBox
from turnout.store.sql_store import SqlStore, Statements
from turnout.wal import truncate_wal

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
CREATE TABLE IF NOT EXISTS playbook_revisions (
    connection TEXT NOT NULL,
    number INTEGER NOT NULL,
    created_at REAL NOT NULL,
    origin TEXT NOT NULL,
    rules TEXT NOT NULL,
    consent TEXT NOT NULL,
    consent_missing TEXT NOT NULL,
    diff TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (connection, number)
);
"""

# Columns added after a table's first version: (table, column, its SQL type). A store created
# by an older Turnout gains them at start; SQLite has no `ADD COLUMN IF NOT EXISTS`.
_ADDED_COLUMNS = (("deliveries", "playbook_revision", "INTEGER"),)


def _migrate(conn: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class Store(SqlStore):
    """`StateStore` in one SQLite file: the shared queries over a writer and a reader thread."""

    _conflict_errors = (sqlite3.IntegrityError,)

    def __init__(
        self,
        path: Path,
        box: SecretBox,
        secret_fields: Callable[[str], frozenset[str]],
    ) -> None:
        super().__init__(box, secret_fields)
        self.path = path
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turnout-store-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turnout-store-r")
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
        self._write_conn = self._connect()
        self._write_conn.executescript(_SCHEMA)
        _migrate(self._write_conn)
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

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert self._read_conn is not None
        conn = self._read_conn
        args = tuple(params)
        return await asyncio.get_running_loop().run_in_executor(
            self._reader, lambda: conn.execute(sql, args).fetchall()
        )

    async def _many(self, statements: Statements) -> None:
        batch = list(statements)  # built here, run on the writer thread

        def run(c: sqlite3.Connection) -> None:
            for sql, rows in batch:
                if rows:
                    c.executemany(sql, rows)

        await self._write(run)

    async def scrub(self) -> bool:
        """Copy the WAL into the database and empty it, so the page images of deleted rows go
        too (a privacy deletion's last step); False if readers kept it busy too long."""
        return await asyncio.to_thread(truncate_wal, self._connect)

    async def rename_source(self, old: str, new: str) -> None:
        def rename(c: sqlite3.Connection) -> None:
            c.execute("UPDATE sources SET name = ? WHERE name = ?", (new, old))
            for name, sources in c.execute("SELECT name, sources FROM connections").fetchall():
                c.execute(
                    "UPDATE connections SET sources = ? WHERE name = ?",
                    (renamed_sources(sources, old, new), name),
                )

        await self._write(rename)
        await self._refresh_sources()
