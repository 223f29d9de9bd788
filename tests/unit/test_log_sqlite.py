"""The embedded log: committed before answering, ordered, shared commits, trimmed safely."""

from __future__ import annotations

import asyncio
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
    await log.append(_entries(10))
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
