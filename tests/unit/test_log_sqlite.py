"""The embedded log: committed before answering, ordered, shared commits, trimmed safely."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from turnout.log.base import LogFull, NewEntry
from turnout.log.sqlite import SQLiteLog


def _entries(n: int, person: str = "p") -> list[NewEntry]:
    return [NewEntry(source="web", person=person, payload=f"m{i}".encode()) for i in range(n)]


async def test_appends_are_read_back_in_order_and_survive_reopening(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    await log.append(_entries(3))
    await log.close()

    reopened = SQLiteLog(tmp_path / "log.db")
    await reopened.start()
    read = await reopened.read(0, 10)
    assert [e.payload for e in read] == [b"m0", b"m1", b"m2"]
    assert [e.offset for e in read] == [1, 2, 3]
    await reopened.close()


async def test_concurrent_appends_share_commits_and_all_land(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db", linger=0.005)
    await log.start()
    await asyncio.gather(*(log.append(_entries(10, person=f"p{i}")) for i in range(200)))
    assert await log.head() == 2000
    assert len(await log.read(0, 5000)) == 2000
    await log.close()


async def test_positions_only_move_forward_unless_reset(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    await log.commit_position("lane", 10)
    await log.commit_position("lane", 5)
    assert await log.position("lane") == 10
    await log.reset_position("lane", 3)
    assert await log.position("lane") == 3
    await log.close()


async def test_trim_keeps_what_a_lane_has_not_finished(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    for entry in _entries(10):  # one commit each: one chunk each
        await log.append([entry])
    removed = await log.trim(before_offset=4, older_than=time.time() + 1)
    assert removed == 3
    assert (await log.read(0, 100))[0].offset == 4
    await log.append(_entries(1))
    assert (await log.read(10, 10))[0].offset == 11  # offsets are never reused
    await log.close()


async def test_a_full_log_refuses_instead_of_dropping(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db", max_entries=5)
    await log.start()
    await log.append(_entries(5))
    await log.append(_entries(1))  # the bound is checked before appending: now over it
    with pytest.raises(LogFull, match="over its bound"):
        await log.append(_entries(1))
    await log.close()


async def test_read_person_returns_only_that_persons_entries(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    await log.append(_entries(2, "a") + _entries(2, "b") + _entries(1, "a"))
    assert [e.offset for e in await log.read_person("a", 0, 10)] == [1, 2, 5]
    assert [e.offset for e in await log.read_person("a", 2, 10)] == [5]
    await log.close()


async def test_a_chunk_is_trimmed_only_whole_and_offsets_outlive_trimming(
    tmp_path: Path,
) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    await log.append(_entries(10))  # one request: one chunk, offsets 1..10
    assert await log.trim(before_offset=4, older_than=time.time() + 1) == 0
    assert (await log.read(0, 1))[0].offset == 1
    await log.append(_entries(1))
    assert await log.trim(before_offset=12, older_than=time.time() + 1) == 11
    assert (await log.stats()).entries == 0
    await log.close()

    reopened = SQLiteLog(tmp_path / "log.db")
    await reopened.start()
    assert await reopened.head() == 11
    await reopened.append(_entries(1))
    assert [e.offset for e in await reopened.read(0, 10)] == [12]
    await reopened.close()


async def test_reads_cross_chunks_and_stop_at_the_limit(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    for i in range(30):  # 30 chunks of 3: more than one query's worth of chunks
        await log.append(_entries(3, person=f"p{i % 2}"))
    read = await log.read(4, 50)
    assert [e.offset for e in read] == list(range(5, 55))
    assert [e.payload for e in read[:3]] == [b"m1", b"m2", b"m0"]
    mine = await log.read_person("p1", 0, 1000)
    assert [e.offset for e in mine] == [
        o for i in range(1, 30, 2) for o in range(3 * i + 1, 3 * i + 4)
    ]
    assert all(e.person == "p1" for e in mine)
    assert await log.read(90, 10) == []
    await log.close()


async def test_one_request_with_several_sources_keeps_each_messages_source(
    tmp_path: Path,
) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    mixed = [NewEntry("web", "a", b"1"), NewEntry("app", "a", b"2"), NewEntry("web", "b", b"3")]
    await log.append(mixed)
    assert [(e.source, e.person, e.payload) for e in await log.read(0, 10)] == [
        ("web", "a", b"1"),
        ("app", "a", b"2"),
        ("web", "b", b"3"),
    ]
    await log.close()


async def test_offset_at_and_stats_count_messages_not_chunks(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    await log.append(_entries(5))
    between = time.time()
    await asyncio.sleep(0.01)
    await log.append(_entries(4))
    assert await log.offset_at(between) == 5
    stats = await log.stats()
    assert (stats.entries, stats.head, stats.oldest_offset) == (9, 9, 1)
    await log.close()


async def test_a_log_of_one_row_per_message_is_converted_with_its_offsets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    with sqlite3.connect(path) as old:
        old.executescript(
            """
            CREATE TABLE entries (offset INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,
                person TEXT NOT NULL, payload BLOB NOT NULL, appended_at REAL NOT NULL);
            CREATE TABLE positions (lane TEXT PRIMARY KEY, offset INTEGER NOT NULL);
            INSERT INTO positions VALUES ('lane', 2);
            """
        )
        for i in range(1, 6):
            old.execute(
                "INSERT INTO entries (source, person, payload, appended_at) VALUES (?, ?, ?, ?)",
                ("web", f"p{i}", f"m{i}".encode(), time.time()),
            )
        old.execute("DELETE FROM entries WHERE offset IN (1, 5)")  # trimmed, and a lost tail
    log = SQLiteLog(path)
    await log.start()
    assert await log.position("lane") == 2
    assert [(e.offset, e.person, e.payload) for e in await log.read(0, 10)] == [
        (2, "p2", b"m2"),
        (3, "p3", b"m3"),
        (4, "p4", b"m4"),
    ]
    await log.append(_entries(1))
    assert (await log.read(4, 10))[0].offset == 6  # 5 was used once: never again
    await log.close()
