"""Delivery on a partitioned log shared by several processes (NATS JetStream + PostgreSQL).

Each process runs, for every connection, one lane per partition it owns (`ownership.py` decides
which); a lane's position lives per (connection, partition), so a partition moves between
processes by stopping its lanes here (they commit) and starting them there (they resume).

What a single process did alone now needs telling the others, and each is done so that a
process joining or leaving at the same moment cannot undo it:
- connection changes (saved in any process's dashboard) are picked up from the store every
  few seconds, and the connection's lanes restart with the new settings;
- "re-deliver since T" resets every partition's position, then tells the owners, which stop the
  lane (its last flush may move the position forward again), reset once more, and restart it;
- a dead-letter replay, asked of any process (one that only ingests too), is written per
  partition to a key-value bucket (`replays.py`); the owner of each partition takes its part
  when told, and at every sweep, so a partition moving at that instant or owned by nobody yet
  gets it from its next owner. The store marks a letter replayed only once delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from turnout.config import DeliveryConfig
from turnout.delivery.gate import RateGate
from turnout.delivery.lane_group import LaneGroup
from turnout.delivery.manager import DeliveryManager, SettingsError
from turnout.delivery.ownership import Ownership, cancel_until_done
from turnout.delivery.replays import ReplayRequests
from turnout.destinations.base import Destination
from turnout.log.base import EventLog
from turnout.playbooks import PlaybookError
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter
from turnout.tap import Tap

log = logging.getLogger("turnout.delivery")

CONFIG_POLL = 2.0  # seconds between looks at the store for connections changed elsewhere
LEASE_TTL = 6.0  # a killed process's partitions are taken over within about this long
LEASE_RENEW = 1.0


class PartitionedLog(EventLog, Protocol):
    """What delivery needs from a log split into partitions shared by several processes."""

    partitions: int

    def partition(self, partition: int) -> EventLog: ...

    def partition_of(self, person: str) -> int: ...

    async def bucket(self, name: str, ttl: float | None = None) -> Any: ...

    async def broadcast(self, message: dict[str, Any]) -> None: ...

    def on_control(self, handler: Callable[[dict[str, Any]], Awaitable[None]]) -> None: ...


class PartitionedDeliveryManager(DeliveryManager):
    def __init__(
        self,
        log_: PartitionedLog,
        store: StateStore,
        destinations: Callable[[str], Destination],
        config: DeliveryConfig,
        tap: Tap,
        retention_hours: float,
    ) -> None:
        super().__init__(log_, store, destinations, config, tap, retention_hours)
        self._plog = log_
        self.groups: dict[str, LaneGroup] = {}
        self.ownership: Ownership | None = None
        self.active: set[int] = set()  # partitions whose lanes run here
        self._watcher: asyncio.Task[None] | None = None
        self._replays: ReplayRequests | None = None

    async def start(self) -> None:
        for connection in await self._store.list_connections():
            await self.load_playbook(connection.name)
            self._add_group(connection)
        self._plog.on_control(self._on_control)
        self.ownership = Ownership(
            await self._plog.bucket("members", LEASE_TTL),
            await self._plog.bucket("leases", LEASE_TTL),
            self._plog.partitions,
            self._acquire,
            self._release,
            ttl=LEASE_TTL,
            interval=LEASE_RENEW,
        )
        await self.ownership.start()
        self._watcher = asyncio.create_task(self._watch_connections(), name="connections-watch")
        self._housekeeping = asyncio.create_task(self._retain_forever(), name="log-retention")

    async def stop(self) -> None:
        for task in (self._watcher, self._housekeeping):
            if task is not None:
                await cancel_until_done(task)  # one cancel can be lost under a NATS reply
        if self.ownership is not None:
            await self.ownership.stop()  # stops every lane, commits, hands partitions over
        await asyncio.gather(*(group.stop() for group in self.groups.values()))
        self.groups.clear()
        self.lanes.clear()

    # -- groups and lanes --------------------------------------------------------------------

    def _add_group(self, connection: Connection) -> LaneGroup | None:
        try:
            destination = self._destinations(connection.destination)
        except KeyError as exc:
            log.error("connection %s not started: %s", connection.name, exc)
            return None
        rate = connection.rate_limit or destination.default_rate_limit
        group = LaneGroup(connection, RateGate(rate, connection.name), rate)
        group.share_rate(len(self.active), self._plog.partitions)
        self.groups[connection.name] = group
        self.lanes[connection.name] = group
        return group

    def _start_partition_lane(
        self, group: LaneGroup, partition: int, *, skip_recorded: bool = True
    ) -> None:
        try:
            lane = self.lane_for(
                group.connection,
                skip_recorded=skip_recorded,
                log_=self._plog.partition(partition),
                gate=group.gate,
            )
        except (SettingsError, KeyError, PlaybookError) as exc:
            log.error("connection %s not started: %s", group.name, exc)
            return
        group.lanes[partition] = lane
        lane.start()

    def _share_rates(self) -> None:
        for group in self.groups.values():
            group.share_rate(len(self.active), self._plog.partitions)

    async def _acquire(self, partition: int) -> None:
        async with self._lock:
            self.active.add(partition)
            self._share_rates()
            for group in self.groups.values():
                self._start_partition_lane(group, partition)
        log.info("partition %d: delivering here", partition)

    async def _release(self, partition: int) -> None:
        """Cut this process's rate share first, then stop the lanes (they finish what is in
        flight and commit); the next owner starts only after, so the shares never overlap."""
        async with self._lock:
            self.active.discard(partition)
            self._share_rates()
            lanes = [g.lanes.pop(partition) for g in self.groups.values() if partition in g.lanes]
        await asyncio.gather(*(lane.stop() for lane in lanes))
        log.info("partition %d: handed over", partition)

    async def apply(self, connection: Connection) -> None:
        async with self._lock:
            old = self.groups.pop(connection.name, None)
            self.lanes.pop(connection.name, None)
            if old is not None:
                await old.stop()
            group = self._add_group(connection)
            if group is not None:
                for partition in sorted(self.active):
                    self._start_partition_lane(group, partition)

    async def remove(self, name: str, *, forget_playbook: bool = True) -> None:
        async with self._lock:
            self.lanes.pop(name, None)
            group = self.groups.pop(name, None)
            if group is not None:
                await group.stop()
        if forget_playbook:
            self.playbooks.pop(name, None)
            self.broken_playbooks.pop(name, None)

    async def _watch_connections(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL)
            try:
                await self.sync_connections()
                await self.sync_playbooks()
                for name in list(self.groups):
                    await self._take_replays(name)
            except Exception:
                log.exception("could not reload connections or replays; will try again")

    async def sync_connections(self) -> None:
        """Apply connections saved, changed or deleted by any process."""
        stored = {c.name: c for c in await self._store.list_connections()}
        for name in set(self.groups) - set(stored):
            await self.remove(name)
        for name, connection in stored.items():
            group = self.groups.get(name)
            if group is None or _shape(group.connection) != _shape(connection):
                await self.apply(connection)

    # -- redelivery, replay, retention -------------------------------------------------------

    def _lane_id(self, name: str) -> str:
        return f"connection:{name}"

    async def place_new(self, name: str, *, deliver_history: bool) -> None:
        """A new connection starts at every partition's head, or at its oldest entry."""
        for partition in range(self._plog.partitions):
            view = self._plog.partition(partition)
            start = 0 if deliver_history else await view.head()
            await view.reset_position(self._lane_id(name), start)

    async def redeliver_since(self, name: str, unix_time: float) -> int:
        if name not in self.groups and await self._store.get_connection(name) is None:
            raise KeyError(name)
        for partition in range(self._plog.partitions):
            view = self._plog.partition(partition)
            await view.reset_position(self._lane_id(name), await view.offset_at(unix_time))
        await self._plog.broadcast({"kind": "redeliver", "connection": name, "since": unix_time})
        return await self._log.offset_at(unix_time)

    async def _replay_requests(self) -> ReplayRequests:
        if self._replays is None:  # an ingest-only process never started delivery
            self._replays = ReplayRequests(await self._plog.bucket("replays"))
        return self._replays

    async def replay(self, name: str, letters: list[DeadLetter]) -> int:
        if name not in self.groups and await self._store.get_connection(name) is None:
            raise KeyError(name)
        requests = await self._replay_requests()
        by_partition: dict[int, list[int]] = {}
        for letter in letters:
            by_partition.setdefault(self._plog.partition_of(letter.person), []).append(letter.id)
        for partition, ids in sorted(by_partition.items()):
            await requests.add(name, partition, ids)
        await self._plog.broadcast({"kind": "replay", "connection": name})
        return len(letters)

    async def _on_control(self, message: dict[str, Any]) -> None:
        name = str(message.get("connection", ""))
        if message.get("kind") == "redeliver":
            await self._redeliver_here(name, float(message["since"]))
        elif message.get("kind") == "replay":
            await self._take_replays(name)

    async def _redeliver_here(self, name: str, unix_time: float) -> None:
        async with self._lock:
            group = self.groups.get(name)
            if group is None:
                return
            for partition in sorted(group.lanes):
                await group.stop_partition(partition)
                view = self._plog.partition(partition)
                await view.reset_position(self._lane_id(name), await view.offset_at(unix_time))
                self._start_partition_lane(group, partition, skip_recorded=False)

    async def _take_replays(self, name: str) -> None:
        """Take the pending replay requests of the partitions whose lanes run here."""
        group = self.groups.get(name)
        if group is None or not group.lanes:
            return
        requests = await self._replay_requests()
        for partition in sorted(group.lanes):

            async def replay(ids: set[int], partition: int = partition) -> bool:
                lane = group.lanes.get(partition)
                if lane is None:
                    return False  # handed over meanwhile: the next owner takes the request
                letters = [
                    letter
                    for letter in await self._store.dead_letters(name, limit=100_000)
                    if letter.id in ids
                ]
                count = lane.replay(letters)
                if count:
                    log.info("connection %s: replaying %d dead letters here", name, count)
                return True

            await requests.take(name, partition, replay)

    async def trim(self) -> int:
        """Per partition: drop entries every connection has resolved and past retention."""
        connections = await self._store.list_connections()
        cutoff = time.time() - self._retention
        removed = 0
        for partition in range(self._plog.partitions):
            view = self._plog.partition(partition)
            positions = [await view.position(self._lane_id(c.name)) for c in connections]
            floor = min(positions) if positions else await view.head()
            removed += await view.trim(floor + 1, cutoff)
        await self._store.trim(cutoff)
        return removed


def _shape(connection: Connection) -> tuple[Any, ...]:
    """What a lane is built from; `updated_at` alone changing (a file re-applied) is no change."""
    return (
        connection.destination,
        connection.settings,
        connection.sources,
        connection.enabled,
        connection.rate_limit,
    )
