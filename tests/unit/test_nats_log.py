"""The JetStream log keeps the `EventLog` contract, per partition, against a real NATS server."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from services import require_nats, unique
from turnout.config import LogConfig
from turnout.log.base import NewEntry
from turnout.log.nats import NATSLog

pytestmark = pytest.mark.services


@pytest.fixture
async def nlog() -> AsyncIterator[NATSLog]:
    url = require_nats()
    stream = unique("tlog")
    log_ = NATSLog(LogConfig(backend="nats", url=url, stream=stream, partitions=4))
    await log_.start()
    try:
        yield log_
    finally:
        js = log_.js
        await js.delete_stream(stream)
        for bucket in ("positions",):
            await js.delete_key_value(f"{stream}-{bucket}")
        await log_.close()


def entries(people: list[str]) -> list[NewEntry]:
    return [NewEntry("web", person, f"m{i}".encode()) for i, person in enumerate(people)]


async def test_each_partition_reads_its_people_in_append_order(nlog: NATSLog) -> None:
    people = [f"p{i % 7}" for i in range(70)]
    await nlog.append(entries(people))
    assert await nlog.head() == 70
    seen: list[tuple[str, bytes]] = []
    for p in range(4):
        view = nlog.partition(p)
        after, got = 0, []
        while batch := await view.read(after, 9):
            got.extend(batch)
            after = batch[-1].offset
        await view.close()
        assert [e.offset for e in got] == sorted(e.offset for e in got)
        assert all(nlog.partition_of(e.person) == p for e in got)
        seen.extend((e.person, e.payload) for e in got)
    assert sorted(seen) == sorted((p, f"m{i}".encode()) for i, p in enumerate(people))
    everything = await nlog.read(0, 1000)
    assert [e.offset for e in everything] == list(range(1, 71))


async def test_read_person_filters_to_the_person(nlog: NATSLog) -> None:
    await nlog.append(entries(["ann", "bob", "ann", "cy", "ann"]))
    got = await nlog.read_person("ann", 1, 10)
    assert [(e.offset, e.payload) for e in got] == [(3, b"m2"), (5, b"m4")]
    assert [e.offset for e in await nlog.read_person("ann", 0, 1)] == [1]


async def test_positions_only_move_forward_unless_reset(nlog: NATSLog) -> None:
    view = nlog.partition(2)
    assert await view.position("connection:cio") == 0
    await view.commit_position("connection:cio", 10)
    await view.commit_position("connection:cio", 7)
    assert await view.position("connection:cio") == 10
    assert await nlog.partition(1).position("connection:cio") == 0
    await view.reset_position("connection:cio", 3)
    assert await view.position("connection:cio") == 3


async def test_wait_for_new_wakes_on_an_append_in_the_partition(nlog: NATSLog) -> None:
    p = nlog.partition_of("zed")
    view = nlog.partition(p)
    waiter = asyncio.create_task(view.wait_for_new(0, 600.0))
    await asyncio.sleep(0.1)  # the waiter is waiting (were it not, it would return at once)
    await nlog.append(entries(["zed"]))
    # Woken by the append: had it waited out its 600 s, this deadline would fail the test.
    await asyncio.wait_for(waiter, 60)
    assert len(await view.read(0, 10)) == 1


async def test_offset_at_and_trim(nlog: NATSLog) -> None:
    await nlog.append(entries(["a", "b", "c"]))
    await asyncio.sleep(0.05)
    middle = time.time()
    await asyncio.sleep(0.05)
    await nlog.append(entries(["a", "b", "c"]))
    assert await nlog.offset_at(middle) == 3
    assert await nlog.offset_at(time.time() + 60) == 6
    removed = await nlog.trim(4, middle)
    assert removed == 3
    stats = await nlog.stats()
    assert stats.entries == 3 and stats.head == 6
