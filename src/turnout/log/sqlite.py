"""The embedded event log: one SQLite file in WAL mode, written by a single group-commit thread.

Why one writer thread: SQLite allows one writer at a time, and a commit costs a disk sync. The
writer gathers every append waiting at that moment into one transaction, so a hundred concurrent
requests cost one sync, not a hundred. Each request is answered only after the transaction
holding its messages has committed.

No timed wait (`linger`, default 0) for more appends before committing: while one group commits,
the next forms in the queue by itself, so groups grow with the load. A 2 ms wait added 2 ms to
every request and, with an SDK's 32 connections each waiting for its answer, capped single-event
requests at 8,400/s; without it they reached 17,400/s with a lower p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from turnout.log.base import Entry, LogFull, LogStats, NewEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    person TEXT NOT NULL,
    payload BLOB NOT NULL,
    appended_at REAL NOT NULL
);
-- No index by person: it doubled the cost of every append, for the benefit of `read_person`,
-- which runs only for a lane's spilled (unusually busy) people.
DROP INDEX IF EXISTS entries_by_person;
CREATE TABLE IF NOT EXISTS positions (
    lane TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
"""

# A whole group in one statement: the small columns travel as one JSON array, the payloads as one
# blob of them end to end, each row naming its slice. `executemany` would hand the GIL between
# this thread and the request loop once per row (sqlite3 releases it around every step), which
# cut the writer to a fraction of its speed while the loop was busy; payloads inside the JSON
# array would be escaped by us and unescaped by SQLite, a third of the writer's time.
_INSERT_GROUP = (
    "INSERT INTO entries (source, person, payload, appended_at)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " substr(?2, json_extract(value, '$[2]'), json_extract(value, '$[3]')), ?1"
    " FROM json_each(?3)"
)
_encode_rows = msgspec.json.encode
CHECKPOINT_INTERVAL = 1.0  # seconds
# A group's payloads travel as one blob, and SQLite refuses a value over 1 GB (SQLITE_MAX_LENGTH):
# 2,000 requests of 500 KB would pass it. Groups stop well short of that.
MAX_GROUP_JOBS = 2000
MAX_GROUP_BYTES = 64 * 1024 * 1024
_ENTRY_COLUMNS = "offset, source, person, payload, appended_at"


@dataclass(slots=True)
class _Job:
    """One unit of work for the writer: an append, or any other write (positions, trims)."""

    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    entries: list[NewEntry] | None = None
    write: Callable[[sqlite3.Connection], Any] | None = None
    size: int = 0  # payload bytes


class SQLiteLog:
    """`EventLog` on one SQLite file. Safe for one process; use the NATS log for several."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        linger: float = 0.0,
        max_entries: int = 50_000_000,
        min_free_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._linger = linger
        self._max_entries = max_entries
        self._min_free_bytes = min_free_bytes
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._closing = threading.Event()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="turnout-log-read")
        self._local = threading.local()
        self._head = 0
        self._oldest = 1
        self._appended = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disk_checked_at = 0.0
        self._disk_ok = True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        conn = self._connect()
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT COALESCE(MAX(offset), 0), COALESCE(MIN(offset), 1) FROM entries")
        self._head, self._oldest = row.fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='entries'").fetchone()
        if seq:
            self._head = max(self._head, seq[0])
        # Checkpoints (copying the WAL back into the database) run in their own thread, so a
        # group commit never waits behind one: automatic checkpoints would run in the writer.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="turnout-log-writer", daemon=True
        )
        self._writer.start()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="turnout-log-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints never block the writer; they copy what they can, every second."""
        conn = self._connect()
        try:
            while not self._closing.wait(CHECKPOINT_INTERVAL):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        self._closing.set()  # after the writer: the last checkpoint sees every commit
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        self._readers.shutdown(wait=True)

    # -- appending ---------------------------------------------------------------------------

    async def append(self, entries: list[NewEntry]) -> None:
        if not entries:
            return
        self._check_capacity()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        size = sum(len(e.payload) for e in entries)
        self._jobs.put(_Job(future=future, loop=loop, entries=entries, size=size))
        await future

    def _check_capacity(self) -> None:
        if self._head - self._oldest + 1 > self._max_entries:
            raise LogFull(f"log backlog is over its bound of {self._max_entries} messages")
        now = time.monotonic()
        if now - self._disk_checked_at > 1.0:
            self._disk_checked_at = now
            free = shutil.disk_usage(self.path.parent).free
            self._disk_ok = free >= self._min_free_bytes
        if not self._disk_ok:
            raise LogFull(
                f"less than {self._min_free_bytes // (1024 * 1024)} MB free on the log's disk"
            )

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        """The single writer: gather waiting jobs, commit them together, answer each."""
        while True:
            job = self._jobs.get()
            if job is None:
                conn.close()
                return
            group = [job]
            size = job.size
            deadline = time.monotonic() + self._linger
            stop = False
            while len(group) < MAX_GROUP_JOBS and size < MAX_GROUP_BYTES:
                remaining = deadline - time.monotonic()
                try:
                    nxt = (
                        self._jobs.get(timeout=remaining)
                        if remaining > 0
                        else self._jobs.get_nowait()
                    )
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += nxt.size
            self._commit_group(conn, group)
            if stop:
                conn.close()
                return

    def _commit_group(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        results: list[Any] = []
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            entries = [e for job in group if job.entries is not None for e in job.entries]
            if entries:
                rows = []
                start = 1  # substr counts from 1
                for e in entries:
                    size = len(e.payload)
                    rows.append((e.source, e.person, start, size))
                    start += size
                payloads = b"".join([e.payload for e in entries])
                conn.execute(_INSERT_GROUP, (now, payloads, _encode_rows(rows)))
            for job in group:
                results.append(job.write(conn) if job.write is not None else None)
            head = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='entries'").fetchone()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error: Exception = exc
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                error = LogFull("the log's disk is full")
            for job in group:
                job.loop.call_soon_threadsafe(_fail, job.future, error)
            return
        if head:
            self._head = head[0]
        for job, result in zip(group, results, strict=True):
            job.loop.call_soon_threadsafe(_resolve, job.future, result)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        self._appended.set()
        self._appended = asyncio.Event()

    async def _write(self, write: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job(future=future, loop=loop, write=write))
        return await future

    # -- reading -----------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._readers, lambda: self._reader().execute(sql, params).fetchall()
        )

    async def read(self, after: int, limit: int) -> list[Entry]:
        if after >= self._head:
            return []
        rows = await self._query(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE offset > ? ORDER BY offset LIMIT ?",
            (after, limit),
        )
        return [Entry(*row) for row in rows]

    async def read_person(self, person: str, after: int, limit: int) -> list[Entry]:
        rows = await self._query(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE person = ? AND offset > ?"
            " ORDER BY offset LIMIT ?",
            (person, after, limit),
        )
        return [Entry(*row) for row in rows]

    async def wait_for_new(self, after: int, timeout: float) -> None:
        if self._head > after:
            return
        event = self._appended
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def head(self) -> int:
        return self._head

    # -- positions ---------------------------------------------------------------------------

    async def position(self, lane: str) -> int:
        rows = await self._query("SELECT offset FROM positions WHERE lane = ?", (lane,))
        return int(rows[0][0]) if rows else 0

    async def commit_position(self, lane: str, offset: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO positions (lane, offset) VALUES (?, ?)"
                " ON CONFLICT (lane) DO UPDATE SET offset = MAX(offset, excluded.offset)",
                (lane, offset),
            )
        )

    async def reset_position(self, lane: str, offset: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO positions (lane, offset) VALUES (?, ?)"
                " ON CONFLICT (lane) DO UPDATE SET offset = excluded.offset",
                (lane, offset),
            )
        )

    async def offset_at(self, unix_time: float) -> int:
        rows = await self._query(
            "SELECT COALESCE(MAX(offset), 0) FROM entries WHERE appended_at < ?", (unix_time,)
        )
        if rows[0][0]:
            return int(rows[0][0])
        # Everything kept is newer than `unix_time`: start before the oldest kept entry.
        return max(self._oldest - 1, 0)

    # -- housekeeping ------------------------------------------------------------------------

    async def stats(self) -> LogStats:
        rows = await self._query("SELECT COUNT(*), MIN(offset), MIN(appended_at) FROM entries", ())
        count, oldest, oldest_at = rows[0]
        size = sum(
            p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file()
        )
        return LogStats(
            entries=count,
            head=self._head,
            oldest_offset=oldest or self._head + 1,
            oldest_appended_at=oldest_at,
            size_bytes=size,
        )

    async def trim(self, before_offset: int, older_than: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM entries WHERE offset < ? AND appended_at < ?",
                (before_offset, older_than),
            )
            return cursor.rowcount

        removed = int(await self._write(delete))
        rows = await self._query("SELECT MIN(offset) FROM entries", ())
        self._oldest = rows[0][0] or self._head + 1
        return removed


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
