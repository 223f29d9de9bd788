"""Partition leases in JetStream key-value buckets: fair shares, hand-over, crash takeover."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

sys.path.insert(0, str(Path(__file__).parents[1]))

from services import require_nats, unique
from support import until
from turnout.config import LogConfig
from turnout.log.nats import NATSLog
from turnout.log.nats_ownership import Ownership

pytestmark = pytest.mark.services

_started: list[Member] = []

PARTITIONS = 6
TTL = 2.0


@pytest.fixture
async def nlog() -> AsyncIterator[NATSLog]:
    stream = unique("town")
    log_ = NATSLog(LogConfig(backend="nats", url=require_nats(), stream=stream, partitions=6))
    await log_.start()
    try:
        yield log_
    finally:
        # Members first: a failed test must not leave renewals running against deleted buckets.
        for member in _started:
            if member.ownership is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(member.ownership.stop(), 10)
        _started.clear()
        for bucket in ("positions", "members", "leases"):
            await log_.js.delete_key_value(f"{stream}-{bucket}")
        await log_.js.delete_stream(stream)
        await log_.close()


class Member:
    """An `Ownership` and the partitions its handlers were told about (its running lanes)."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.ownership: Ownership | None = None

    async def start(self, nlog: NATSLog, name: str) -> Member:
        async def acquire(p: int) -> None:
            assert p not in self.running
            self.running.add(p)

        async def release(p: int) -> None:
            await asyncio.sleep(0.05)  # lanes take a moment to stop
            self.running.discard(p)

        self.ownership = Ownership(
            await nlog.bucket("members", TTL),
            await nlog.bucket("leases", TTL),
            PARTITIONS,
            acquire,
            release,
            member_id=name,
            ttl=TTL,
            interval=0.2,
        )
        await self.ownership.start()
        _started.append(self)
        return self


async def test_members_share_partitions_and_never_overlap(nlog: NATSLog) -> None:
    a = await Member().start(nlog, "a")
    await until(lambda: len(a.running) == PARTITIONS)
    b = await Member().start(nlog, "b")
    overlaps = 0

    def settled() -> bool:
        nonlocal overlaps
        overlaps += len(a.running & b.running)
        return len(a.running) == 3 and len(b.running) == 3

    await until(settled)
    assert overlaps == 0
    assert a.running | b.running == set(range(PARTITIONS))
    assert b.ownership is not None
    await b.ownership.stop()  # a clean leave hands everything back at once:
    leases = await nlog.bucket("leases", TTL)
    holders = {(await leases.get(key)).value for key in await leases.keys()}
    assert holders == {b"a"}  # b's leases are deleted, not left to expire
    await until(lambda: len(a.running) == PARTITIONS, timeout=30)
    assert a.ownership is not None
    await a.ownership.stop()


async def crash(ownership: Ownership) -> None:
    """As kill -9: renewals and balancing stop, nothing is released. Cancelled until they end
    (a cancellation that arrives with a NATS reply is lost on Python 3.11)."""
    while not all(task.done() for task in ownership._tasks):
        for task in ownership._tasks:
            task.cancel()
        await asyncio.wait(ownership._tasks, timeout=0.1)


async def test_a_crashed_members_partitions_are_taken_over_after_the_lease_expires(
    nlog: NATSLog,
) -> None:
    a = await Member().start(nlog, "a")
    b = await Member().start(nlog, "b")
    await until(lambda: len(a.running) == 3 and len(b.running) == 3)
    assert b.ownership is not None
    await crash(b.ownership)
    crashed = time.monotonic()
    await until(lambda: len(a.running) == PARTITIONS, timeout=30)
    # Not before b's leases expired: they were renewed at most `interval` before the crash.
    assert time.monotonic() - crashed >= TTL * 0.5
    assert a.ownership is not None
    await a.ownership.stop()


class RacingBucket:
    """A key-value bucket whose `put`, once held, answers only as a cancellation arrives: as with
    `asyncio.wait_for` on Python 3.11 (under every nats-py request), the reply wins and the
    cancellation is lost. A loop stopped by one cancellation would then run on for ever."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self.revision = 0
        self.hold = False
        self.held = asyncio.Event()
        self.lost = 0

    async def _reply(self) -> int:
        self.revision += 1
        await asyncio.sleep(0.01)
        return self.revision

    async def put(self, key: str, value: bytes) -> int:
        if not self.hold:
            return await self._reply()
        self.hold = False
        self.held.set()
        try:
            await asyncio.Event().wait()  # no reply until...
        except asyncio.CancelledError:
            self.lost += 1  # ...it comes with the cancellation, which is lost
        return self.revision

    async def update(self, key: str, value: bytes, last: int) -> int:
        return await self._reply()

    async def create(self, key: str, value: bytes) -> int:
        return await self._reply()

    async def delete(self, key: str, last: int | None = None) -> None:
        await self._reply()

    async def keys(self) -> list[str]:
        await self._reply()
        if not self._keys:
            raise NoKeysError
        return list(self._keys)


async def test_stopping_ends_even_when_a_cancellation_is_lost() -> None:
    members, leases = RacingBucket(["m"]), RacingBucket([])

    async def nothing(p: int) -> None:
        return None

    ownership = Ownership(
        cast(KeyValue, members),
        cast(KeyValue, leases),
        2,
        nothing,
        nothing,
        member_id="m",
        ttl=TTL,
        interval=0.001,
    )
    await ownership.start()
    await until(lambda: len(ownership.owned) == 2)
    members.hold = True
    await asyncio.wait_for(members.held.wait(), 10)  # the renewal waits for its reply
    stopping = asyncio.ensure_future(ownership.stop())  # whose cancellation lands in that put
    done, _ = await asyncio.wait([stopping], timeout=10)
    if not done:
        for task in ownership._tasks:  # clean up what the failed stop left running
            task.cancel()
    assert members.lost == 1
    assert done, "stop() waited for a loop that carried on after its cancellation was lost"
    assert ownership.owned == {}
