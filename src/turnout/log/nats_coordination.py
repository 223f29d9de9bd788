"""Coordinating the delivery processes that share the NATS log (the delivery manager's
`Coordinator`): partition leases, replay requests and notices, all on NATS itself.

- who delivers which partition: leases in the `<stream>-leases` key-value bucket, members in
  `<stream>-members` (`nats_ownership.py`);
- replay requests: kept per connection and partition in `<stream>-replays` until the
  partition's owner takes them (`nats_replays.py`), so a partition moving at that instant, or
  owned by nobody yet, gets them from its next owner;
- notices: published on the log's control subject, which every process of the stream hears
  (`NATSLog.broadcast`); not durable, which is why replay requests are also kept in the bucket.

A process that only ingests never starts it, yet may be asked for a replay: the replay bucket
is opened on first use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from turnout.log.nats import NATSLog
from turnout.log.nats_ownership import Ownership
from turnout.log.nats_replays import ReplayRequests

# Why these: a killed process's partitions are taken over within about LEASE_TTL, and renewing
# every LEASE_RENEW leaves room for several attempts before a lease could expire.
LEASE_TTL = 6.0  # seconds
LEASE_RENEW = 1.0  # seconds

# The shapes of `turnout.delivery.coordination`, written out again: the log never imports
# delivery (data flows one way), and the protocol is structural.
PartitionHandler = Callable[[int], Awaitable[None]]
Notice = dict[str, Any]
NoticeHandler = Callable[[Notice], Awaitable[None]]
Replayer = Callable[[set[int]], Awaitable[bool]]


class NATSCoordinator:
    """The delivery manager's coordinator when several processes share the NATS log: this
    process delivers the partitions whose leases it holds (its fair share), and hears and tells
    every other process of the stream."""

    alone = False

    def __init__(
        self, log_: NATSLog, *, ttl: float = LEASE_TTL, renew: float = LEASE_RENEW
    ) -> None:
        self._log = log_
        self._ttl = ttl
        self._renew = renew
        self.ownership: Ownership | None = None
        self._replays: ReplayRequests | None = None

    async def start(self, on_acquire: PartitionHandler, on_release: PartitionHandler) -> None:
        self.ownership = Ownership(
            await self._log.bucket("members", self._ttl),
            await self._log.bucket("leases", self._ttl),
            self._log.partitions,
            on_acquire,
            on_release,
            ttl=self._ttl,
            interval=self._renew,
        )
        await self.ownership.start()

    async def stop(self) -> None:
        """Stops every lane through `on_release`, commits, and hands the partitions over."""
        if self.ownership is not None:
            await self.ownership.stop()

    def on_notice(self, handler: NoticeHandler) -> None:
        self._log.on_control(handler)

    async def broadcast(self, notice: Notice) -> None:
        await self._log.broadcast(notice)

    async def _requests(self) -> ReplayRequests:
        if self._replays is None:
            self._replays = ReplayRequests(await self._log.bucket("replays"))
        return self._replays

    async def request_replay(self, connection: str, partition: int, ids: list[int]) -> None:
        await (await self._requests()).add(connection, partition, ids)

    async def take_replays(self, connection: str, partition: int, replay: Replayer) -> int:
        return await (await self._requests()).take(connection, partition, replay)
