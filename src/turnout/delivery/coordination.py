"""Who delivers which partition of the log, and how a request made in one process reaches the
lanes that carry it out: the contract the delivery manager needs, and its one-process form.

Why a contract: the manager is the same whether one process delivers everything (the embedded
log: one partition, always its own) or several processes share a partitioned log (partitions
leased to whoever holds them, requests kept until a partition's owner takes them, notices sent
to every process: the coordinator beside that log, in `log/`). Only the coordinator knows which
it is; `app.py` hands the manager the one that fits the log.

What the manager relies on, whichever coordinator it has:
- a partition is delivered by one process at a time: `on_release(p)` returns only once p's lanes
  have stopped and committed their positions, and only then may another process acquire p;
- a notice reaches every delivering process, the sender included, but is not durable: whatever
  must not be lost on the way (a replay request) is kept by the coordinator as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

PartitionHandler = Callable[[int], Awaitable[None]]
Notice = dict[str, Any]  # {"kind": ..., "connection": ..., ...}: small, JSON-encodable
NoticeHandler = Callable[[Notice], Awaitable[None]]
# Hands dead-letter ids to the partition's lane; False when that lane is no longer here.
Replayer = Callable[[set[int]], Awaitable[bool]]


class Coordinator(Protocol):
    @property
    def alone(self) -> bool:
        """True when this process is the only one delivering from the log: nothing changes
        elsewhere, and a lane that does not run here runs nowhere."""
        ...

    async def start(self, on_acquire: PartitionHandler, on_release: PartitionHandler) -> None:
        """Start taking partitions: `on_acquire(p)` when this process may deliver partition p,
        `on_release(p)` when it must stop delivering it."""
        ...

    async def stop(self) -> None:
        """Release every partition (through `on_release`), then leave."""
        ...

    def on_notice(self, handler: NoticeHandler) -> None:
        """Call `handler` with every notice any process broadcasts, this one's included."""
        ...

    async def broadcast(self, notice: Notice) -> None:
        """Tell every delivering process something (a redelivery, a replay to take)."""
        ...

    async def request_replay(self, connection: str, partition: int, ids: list[int]) -> None:
        """Keep these dead-letter ids to replay until the partition's owner takes them."""
        ...

    async def take_replays(self, connection: str, partition: int, replay: Replayer) -> int:
        """Hand the partition's pending ids to `replay`, and forget them once it took them
        (when it answers False they stay for the partition's next owner). Returns how many
        ids were handed over."""
        ...


class LocalCoordinator:
    """One process delivering alone (the embedded log): it owns every partition from the start
    until it stops, a notice goes straight to its own handlers, and a replay request waits in
    memory only until the lane takes it, which it does at once when told."""

    alone = True

    def __init__(self, partitions: int = 1) -> None:
        self._partitions = partitions
        self._owned: list[int] = []
        self._on_release: PartitionHandler | None = None
        self._handlers: list[NoticeHandler] = []
        self._replays: dict[tuple[str, int], set[int]] = {}

    async def start(self, on_acquire: PartitionHandler, on_release: PartitionHandler) -> None:
        self._on_release = on_release
        for partition in range(self._partitions):
            await on_acquire(partition)
            self._owned.append(partition)

    async def stop(self) -> None:
        owned, self._owned = self._owned, []
        if self._on_release is not None:
            for partition in owned:
                await self._on_release(partition)

    def on_notice(self, handler: NoticeHandler) -> None:
        self._handlers.append(handler)

    async def broadcast(self, notice: Notice) -> None:
        """Run the handlers before answering: what a user asked is done when the call returns
        (a failure reaches the caller, as there is nobody else to tell)."""
        for handler in list(self._handlers):
            await handler(notice)

    async def request_replay(self, connection: str, partition: int, ids: list[int]) -> None:
        self._replays.setdefault((connection, partition), set()).update(ids)

    async def take_replays(self, connection: str, partition: int, replay: Replayer) -> int:
        ids = self._replays.pop((connection, partition), set())
        if not ids:
            return 0
        if not await replay(ids):
            self._replays.setdefault((connection, partition), set()).update(ids)
            return 0
        return len(ids)
