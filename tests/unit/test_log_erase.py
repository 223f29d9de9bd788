"""Erasing people from the SQLite log: tombstones keep offsets dense and readers skip them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from turnout.log.base import NewEntry
from turnout.log.sqlite import SQLiteLog


async def test_erased_calls_are_gone_and_the_log_goes_on(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "log.db")
    await log.start()
    try:
        await log.append([NewEntry("web", "gone-9", b'{"n":1}'), NewEntry("web", "b", b'{"n":2}')])
        await log.append([NewEntry("web", "gone-9", b'{"n":3}')])
        assert await log.erase_persons({"gone-9"}, await log.head()) == 2
        assert await log.scrub()
        assert [(e.offset, e.payload) for e in await log.read(0, 10)] == [(2, b'{"n":2}')]
        assert await log.read_person("gone-9", 0, 10) == []
        assert await log.head() == 3  # offsets are not reused
        # Only a tombstone past offset 2: a reader there waits for a real call.
        waited = asyncio.create_task(log.wait_for_new(2, timeout=5))
        await asyncio.sleep(0.2)
        assert not waited.done()
        await log.append([NewEntry("web", "c", b'{"n":4}')])
        await asyncio.wait_for(waited, 5)
        assert [e.offset for e in await log.read(2, 10)] == [4]
    finally:
        await log.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("log.db*"))
    assert b"gone-9" not in raw and b'{"n":3}' not in raw
