"""The embedded event log: one SQLite file in WAL mode, written by a single group-commit thread.

Why one writer thread: SQLite allows one writer at a time, and a commit costs a disk sync. The
writer gathers every append waiting at that moment into one transaction, so a hundred concurrent
requests cost one sync, not a hundred. Each request is answered only after the transaction
holding its messages has committed.

No timed wait (`linger`, default 0) for more appends before committing: while one group commits,
the next forms in the queue by itself, so groups grow with the load. A 2 ms wait added 2 ms to
every request and, with an SDK's 32 connections each waiting for its answer, capped single-event
requests at 8,400/s; without it they reached 17,400/s with a lower p99.

Messages are stored in chunks: one row holds a run of consecutive messages of one source (a whole
request, or many small requests committed together), their payloads end to end. Offsets stay one
per message and dense (a chunk covers `first .. first + count - 1`), so nothing above the log
sees chunks. A row per message cost SQLite about as much CPU as all of ingest's own work per
message; a row per chunk costs a fraction of it. Trimming drops whole chunks only, so it may keep
a few finished messages a little longer.

Erasing a person (a privacy deletion) rewrites each chunk holding their messages with those
messages replaced by tombstones (an empty person key and a size of 0), so offsets stay dense and
readers skip them. Every connection runs with `secure_delete=ON`, so the bytes a rewrite or a
trim frees are overwritten with zeros instead of lingering in free pages; after an erasure a
TRUNCATE checkpoint copies the WAL into the database and empties it, so no old page image of the
chunk survives there either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import msgspec

from turnout.datadir import PRIVATE_DIR, create_private
from turnout.log.base import Entry, LogFull, LogStats, NewEntry
from turnout.wal import truncate_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    first INTEGER PRIMARY KEY,      -- the offset of its first message
    count INTEGER NOT NULL,         -- messages in it; 0 for a marker: `first` was used
    source TEXT NOT NULL,
    persons TEXT NOT NULL,          -- JSON array: each message's person key
    sizes TEXT NOT NULL,            -- JSON array: each message's payload length in bytes
    payloads BLOB NOT NULL,         -- the payloads end to end
    appended_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    lane TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
"""

# A log written before chunks (one row per message) is converted once, offsets unchanged.
_FROM_ENTRIES = """
INSERT INTO chunks (first, count, source, persons, sizes, payloads, appended_at)
SELECT offset, 1, source, json_array(person), json_array(length(payload)), payload, appended_at
FROM entries ORDER BY offset
"""

_INSERT_CHUNK = (
    "INSERT INTO chunks (first, count, source, persons, sizes, payloads, appended_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_CHUNK_FIELDS = 7
MAX_CHUNKS_PER_STATEMENT = 1000  # SQLite allows 32,766 parameters
_CHUNK_COLUMNS = "first, count, source, persons, sizes, payloads, appended_at"
# The chunk holding offset :start and every later one.
_FROM_OFFSET = "first >= COALESCE((SELECT MAX(first) FROM chunks WHERE first <= :start), 0)"
# The newest offset ever given: a marker (count 0) stands for its own `first`.
_HEAD = "COALESCE(MAX(first + MAX(count, 1) - 1), 0)"
_encode = msgspec.json.encode
_decode_sizes = msgspec.json.Decoder(list[int]).decode
_decode_persons = msgspec.json.Decoder(list[str]).decode
_source_of = itemgetter(0)
_payload_of = itemgetter(2)
CHECKPOINT_INTERVAL = 1.0  # seconds
# Requests committed together share a chunk up to this size; a bigger request is one chunk.
CHUNK_BYTES = 1024 * 1024
# Caps on one commit: its memory, and how long the requests in it wait for each other.
MAX_GROUP_JOBS = 2000
MAX_GROUP_BYTES = 64 * 1024 * 1024
CHUNKS_PER_READ = 8


@dataclass(slots=True)
class _Job:
    """One unit of work for the writer: an append, or any other write (positions, trims)."""

    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    entries: list[NewEntry] | None = None
    write: Callable[[sqlite3.Connection], Any] | None = None
    size: int = 0  # payload bytes
    source: str | None = None  # the one source of every entry, None when they are mixed


class SQLiteLog:
    """`PartitionedLog` of one partition on one SQLite file. Safe for one process; use the NATS
    log for several.

    Reads need no `start()`: another process (`turnout trace --user`) may read the file while a
    server writes it, without a writer or checkpoints of its own."""

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
        self._visible = 0  # the newest offset that is not a tombstone
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
        conn.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed: erasures leave no copy
        return conn

    async def start(self) -> None:
        self.path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
        self._loop = asyncio.get_running_loop()
        conn = self._connect()
        conn.executescript(_SCHEMA)
        _convert_entries(conn)
        self._head = conn.execute(f"SELECT {_HEAD} FROM chunks").fetchone()[0]
        oldest = conn.execute("SELECT MIN(first) FROM chunks WHERE count > 0").fetchone()[0]
        self._oldest = oldest or self._head + 1
        self._visible = _last_visible(conn)
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

    async def open_to_read(self) -> None:
        """Learn the head of an existing log without starting its writer, for commands that
        only read (`turnout playbook preview`): a server may be running on the same files."""

        def look() -> tuple[int, int]:
            conn = self._reader()
            head = conn.execute(f"SELECT {_HEAD} FROM chunks").fetchone()[0]
            return int(head), _last_visible(conn)

        loop = asyncio.get_running_loop()
        self._head, self._visible = await loop.run_in_executor(self._readers, look)

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
        sources = set(map(_source_of, entries))
        self._jobs.put(
            _Job(
                future=future,
                loop=loop,
                entries=entries,
                size=sum(map(len, map(_payload_of, entries))),
                source=sources.pop() if len(sources) == 1 else None,
            )
        )
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
        """Commit the group, then answer each job on its loop.

        Every call into SQLite hands the GIL to the event loop and must take it back, which
        costs the loop a forced switch while it is busy: a group of appends alone is therefore
        one statement, committed by itself, and the loop is woken once per group, not per job.
        """
        head = self._head
        now = time.time()
        rows: list[Any] = []
        for source, entries in _chunks(group):
            payloads = list(map(_payload_of, entries))
            rows += (
                head + 1,
                len(entries),
                source,
                _encode([e.person for e in entries]),
                _encode(list(map(len, payloads))),
                b"".join(payloads),
                now,
            )
            head += len(entries)
        writes = [job.write for job in group if job.write is not None]
        chunks = len(rows) // _CHUNK_FIELDS
        one_statement = chunks <= MAX_CHUNKS_PER_STATEMENT
        results: list[Any] = []
        try:
            if writes or not one_statement:
                conn.execute("BEGIN IMMEDIATE")
            if one_statement and chunks:
                conn.execute(_insert_chunks(chunks), rows)
            elif chunks:  # many sources mixed message by message: one row at a time
                conn.executemany(
                    _INSERT_CHUNK,
                    [rows[i : i + _CHUNK_FIELDS] for i in range(0, len(rows), _CHUNK_FIELDS)],
                )
            results = [write(conn) for write in writes]
            if conn.in_transaction:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error: Exception = exc
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                error = LogFull("the log's disk is full")
            _answer(group, [error] * len(group), failed=True)
            return
        self._head = head
        if chunks:
            self._visible = head
        answers = iter(results)
        _answer(group, [next(answers) if job.write is not None else None for job in group])
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
        if after >= self._visible:  # nothing past `after` but tombstones, if anything
            return []
        return await self._read_entries(after, limit, None)

    async def read_person(self, person: str, after: int, limit: int) -> list[Entry]:
        return await self._read_entries(after, limit, person)

    async def _read_entries(self, after: int, limit: int, person: str | None) -> list[Entry]:
        """Entries past `after` (of one person, if given), chunk by chunk until `limit`."""

        def read() -> list[Entry]:
            conn = self._reader()
            sql = f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE {_FROM_OFFSET} AND first > :last"
            params: dict[str, Any] = {"start": after + 1, "last": -1}
            if person is not None:  # a cheap filter in SQLite; `_unpack` checks exactly
                sql += " AND instr(persons, :person) > 0"
                params["person"] = _encode(person).decode()
            sql += f" ORDER BY first LIMIT {CHUNKS_PER_READ}"
            found: list[Entry] = []
            while len(found) < limit:
                rows = conn.execute(sql, params).fetchall()
                for row in rows:
                    if len(found) >= limit:
                        break
                    _unpack(row, after, person, limit, found)
                if len(rows) < CHUNKS_PER_READ:
                    break
                params["last"] = rows[-1][0]
            return found

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, read)

    async def wait_for_new(self, after: int, timeout: float) -> None:
        if self._visible > after:
            return
        event = self._appended
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def head(self) -> int:
        return self._head

    # -- as a partitioned log: one partition, itself -----------------------------------------

    partitions = 1

    def partition(self, partition: int) -> SQLiteLog:
        return self

    def partition_of(self, person: str) -> int:
        return 0

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
            "SELECT first + count - 1 FROM chunks WHERE appended_at < ? AND count > 0"
            " ORDER BY first DESC LIMIT 1",
            (unix_time,),
        )
        if rows:
            return int(rows[0][0])
        # Everything kept is newer than `unix_time`: start before the oldest kept entry.
        return max(self._oldest - 1, 0)

    # -- housekeeping ------------------------------------------------------------------------

    async def stats(self) -> LogStats:
        rows = await self._query(
            "SELECT COALESCE(SUM(count), 0), MIN(first), MIN(appended_at) FROM chunks"
            " WHERE count > 0",
            (),
        )
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
                "DELETE FROM chunks WHERE first + count - 1 < ? AND appended_at < ?"
                " RETURNING count",
                (before_offset, older_than),
            )
            removed = sum(row[0] for row in cursor.fetchall())
            if not conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone():
                # Nothing left: a marker keeps the head, so offsets are not reused on restart.
                conn.execute(_INSERT_CHUNK, (self._head, 0, "", "[]", "[]", b"", time.time()))
            return removed

        removed = int(await self._write(delete))
        rows = await self._query("SELECT MIN(first) FROM chunks WHERE count > 0", ())
        self._oldest = rows[0][0] or self._head + 1
        return removed

    # -- erasing people ----------------------------------------------------------------------

    async def erase_persons(self, persons: set[str], upto: int) -> int:
        """Replace every message of these person keys at offsets <= `upto` with a tombstone;
        return how many were erased. Chunks are found by a reader (ingest goes on meanwhile) and
        rewritten by the writer, a few at a time."""
        if not persons:
            return 0
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(
            self._readers, lambda: _chunks_holding(self._reader(), persons, upto)
        )
        erased = 0
        for start in range(0, len(found), ERASE_CHUNKS_PER_WRITE):
            firsts = found[start : start + ERASE_CHUNKS_PER_WRITE]
            erased += int(
                await self._write(functools.partial(self._erase, firsts=firsts, persons=persons))
            )
        return erased

    def _erase(self, conn: sqlite3.Connection, *, firsts: list[int], persons: set[str]) -> int:
        """In the writer: rewrite these chunks without the persons' messages."""
        erased = 0
        for first in firsts:
            row = conn.execute(
                "SELECT persons, sizes, payloads FROM chunks WHERE first = ?", (first,)
            ).fetchone()
            if row is None:  # trimmed since it was found
                continue
            keys, sizes = _decode_persons(row[0]), _decode_sizes(row[1])
            view, start, kept = memoryview(row[2]), 0, []
            for index, size in enumerate(sizes):
                if keys[index] in persons and size:
                    keys[index], sizes[index] = "", 0
                    erased += 1
                else:
                    kept.append(view[start : start + size])
                start += size
            conn.execute(
                "UPDATE chunks SET persons = ?, sizes = ?, payloads = ? WHERE first = ?",
                (_encode(keys), _encode(sizes), b"".join(kept), first),
            )
        self._visible = _last_visible(conn)
        return erased

    async def scrub(self) -> bool:
        """Copy the WAL into the database and empty it (old page images go with it); False if
        readers kept it busy for too long."""
        return await asyncio.to_thread(truncate_wal, self._connect)


ERASE_CHUNKS_PER_WRITE = 32  # chunks one writer transaction rewrites: ingest waits no longer


def _chunks_holding(conn: sqlite3.Connection, persons: set[str], upto: int) -> list[int]:
    """The `first` of each chunk at or below `upto` holding a message of these persons.

    A few ids are searched for inside SQLite (payloads are never read); many are matched here,
    one pass over every chunk's list of person keys."""
    sql = "SELECT first, persons FROM chunks WHERE count > 0 AND first <= ?"
    params: list[Any] = [upto]
    if len(persons) <= 16:
        sql += " AND (" + " OR ".join(["instr(persons, ?) > 0"] * len(persons)) + ")"
        params += [_encode(p).decode() for p in persons]
    return [
        first
        for first, keys in conn.execute(sql, params)
        if not persons.isdisjoint(_decode_persons(keys))
    ]


def _last_visible(conn: sqlite3.Connection) -> int:
    """The newest offset holding a message (not a tombstone); 0 if there is none."""
    for first, count, sizes in conn.execute(
        "SELECT first, count, sizes FROM chunks WHERE count > 0 ORDER BY first DESC"
    ):
        decoded = _decode_sizes(sizes)
        for index in range(count - 1, -1, -1):
            if decoded[index]:
                return int(first + index)
    return 0


def _chunks(group: list[_Job]) -> list[tuple[str, list[NewEntry]]]:
    """The group's entries as chunks: runs of one source, requests joined up to CHUNK_BYTES."""
    chunks: list[tuple[str, list[NewEntry]]] = []
    size = CHUNK_BYTES  # nothing to join the first request to
    for job in group:
        if not job.entries:
            continue
        if job.source is None:  # sources mixed within the request (per-message write keys)
            for source, run in groupby(job.entries, key=attrgetter("source")):
                chunks.append((source, list(run)))
            size = CHUNK_BYTES
        elif chunks and chunks[-1][0] == job.source and size + job.size <= CHUNK_BYTES:
            chunks[-1][1].extend(job.entries)
            size += job.size
        else:
            chunks.append((job.source, list(job.entries)))
            size = job.size
    return chunks


def _unpack(
    row: tuple[Any, ...], after: int, person: str | None, limit: int, found: list[Entry]
) -> None:
    first, count, source, persons_json, sizes_json, payloads, appended_at = row
    persons = _decode_persons(persons_json)
    sizes = _decode_sizes(sizes_json)
    view = memoryview(payloads)
    start = 0
    for index in range(count):
        end = start + sizes[index]
        offset = first + index
        if offset > after and (person is None or persons[index] == person) and sizes[index]:
            found.append(Entry(offset, source, persons[index], bytes(view[start:end]), appended_at))
            if len(found) >= limit:
                return
        start = end


def _convert_entries(conn: sqlite3.Connection) -> None:
    """Move a log of one row per message into chunks, once; offsets and positions still hold."""
    has_entries = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
    ).fetchone()
    if not has_entries:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_FROM_ENTRIES)
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
    head = conn.execute(f"SELECT {_HEAD} FROM chunks").fetchone()[0]
    if seq and seq[0] > head:  # its newest messages trimmed: a marker keeps their offsets used
        conn.execute(_INSERT_CHUNK, (seq[0], 0, "", "[]", "[]", b"", time.time()))
    conn.execute("DROP TABLE entries")
    conn.execute("COMMIT")


@lru_cache(maxsize=64)
def _insert_chunks(count: int) -> str:
    """One INSERT for `count` chunks."""
    return _INSERT_CHUNK + ", (?, ?, ?, ?, ?, ?, ?)" * (count - 1)


def _answer(group: list[_Job], results: list[Any], failed: bool = False) -> None:
    """Settle every job's future, with one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for job, result in zip(group, results, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, result))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_fail_all if failed else _resolve_all, settled)


def _resolve_all(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in settled:
        if not future.done():
            future.set_result(result)


def _fail_all(settled: list[tuple[asyncio.Future[Any], Exception]]) -> None:
    for future, error in settled:
        if not future.done():
            future.set_exception(error)
