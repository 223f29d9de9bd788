"""Runs each connection's lanes, and applies what users change while they run.

The log is split into partitions by person (the embedded log is one partition), and a
coordinator (`coordination.py`) says which partitions this process delivers: every one when it
delivers alone, its share when several processes share the log. For every connection this
process runs one lane per partition it owns, grouped (`lane_group.py`) so the connection is
seen, paused and resumed as one; a lane's position lives per (connection, partition), so a
partition moves between processes by stopping its lanes here (they commit) and starting them
there (they resume).

Saving a connection restarts just its lanes (positions kept: nothing lost or sent twice);
pausing keeps the backlog in the log; retention trims each partition only below the position of
every connection. What a user asks of one process reaches the lanes wherever they run, in a way
a process joining or leaving at that moment cannot undo:
- "re-deliver since T" resets every partition's position, then tells the owners, which stop the
  lane (its last flush may move the position forward again), reset once more, and restart it;
- a dead-letter replay, asked of any process (one that only ingests too), is kept by the
  coordinator per partition; the owner of each partition takes its part when told, and at every
  sweep, so a partition moving at that instant or owned by nobody yet gets it from its next
  owner. The store marks a letter replayed only once delivered;
- when other processes share the log, connections and playbooks saved by any of them are picked
  up from the store every few seconds, and the connection's lanes restart with the new settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from turnout.config import DeliveryConfig
from turnout.delivery.coordination import Coordinator, Notice
from turnout.delivery.gate import RateGate
from turnout.delivery.lane import Lane, lane_id
from turnout.delivery.lane_group import LaneGroup
from turnout.delivery.shaping import ActivePlaybook
from turnout.destinations.base import (
    Destination,
    SettingsError,
    parse_settings,
    privacy_operations,
)
from turnout.log.base import PartitionedLog
from turnout.playbooks import PlaybookError
from turnout.playbooks.revisions import compile_revision
from turnout.privacy.suppression import PrivacyList
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter
from turnout.tap import Tap
from turnout.tasks import cancel_until_done

logger = logging.getLogger("turnout.delivery")

RETENTION_INTERVAL = 600.0  # seconds between log trims
CONFIG_POLL = 2.0  # seconds between looks at the store for connections changed elsewhere

__all__ = ["DeliveryManager", "SettingsError", "parse_settings"]  # the last two: the contract's


class DeliveryManager:
    def __init__(
        self,
        log_: PartitionedLog,
        coordinator: Coordinator,
        store: StateStore,
        destinations: Callable[[str], Destination],
        config: DeliveryConfig,
        tap: Tap,
        retention_hours: float,
    ) -> None:
        self._log = log_
        self._coordinator = coordinator
        self._store = store
        self._destinations = destinations
        self._config = config
        self._tap = tap
        self._retention = retention_hours * 3600
        # The running connections' lane groups; a connection whose lanes cannot be built (bad
        # settings, unknown destination, broken playbook) has none.
        self.lanes: dict[str, LaneGroup] = {}
        self.active: set[int] = set()  # partitions whose lanes run here
        # Each connection as last applied (a group shares the object): what changes elsewhere
        # are compared with, whether its lanes could start or not.
        self._applied: dict[str, Connection] = {}
        # Each connection's current playbook revision, compiled; and the revisions that do not
        # compile (a function's file gone): their connection's lanes are not started.
        self.playbook_dir: Path | None = None  # where functions' files are (set by the app)
        self.playbooks: dict[str, ActivePlaybook] = {}
        self.broken_playbooks: dict[str, tuple[int, str]] = {}
        self.privacy: PrivacyList | None = None  # who no lane may deliver (set by the app)
        self._lock = asyncio.Lock()
        self._housekeeping: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take partitions first (alone: all of them, at once), so each connection's gate is
        sized to this process's share from its first request; then start the connections."""
        self._coordinator.on_notice(self._on_notice)
        await self._coordinator.start(self._acquire, self._release)
        for connection in await self._store.list_connections():
            await self.load_playbook(connection.name)
            await self.apply(connection)
        if not self._coordinator.alone:
            self._watcher = asyncio.create_task(self._watch_connections(), name="connections")
        self._housekeeping = asyncio.create_task(self._retain_forever(), name="log-retention")

    async def stop(self) -> None:
        for task in (self._watcher, self._housekeeping):
            if task is not None:
                await cancel_until_done(task)  # one cancel can be lost under a reply
        await self._coordinator.stop()  # stops every lane, commits, hands partitions over
        await asyncio.gather(*(group.stop() for group in self.lanes.values()))
        self.lanes.clear()

    # -- groups and lanes --------------------------------------------------------------------

    def _destination(self, connection: Connection) -> tuple[Destination, Any]:
        """The connection's destination and parsed settings; raises what keeps its lanes from
        starting (`SettingsError`, `KeyError`: unknown destination, `PlaybookError`)."""
        broken = self.broken_playbooks.get(connection.name)
        if broken is not None:
            raise PlaybookError(f"playbook revision {broken[0]} cannot be loaded: {broken[1]}")
        destination = self._destinations(connection.destination)
        return destination, parse_settings(destination, connection.settings)

    def _lane_for(
        self, connection: Connection, partition: int, gate: RateGate, *, skip_recorded: bool
    ) -> Lane:
        """A lane for the connection on one partition, sending through the group's gate."""
        destination, settings = self._destination(connection)
        return Lane(
            connection,
            destination,
            settings,
            destination.client(settings, gate),
            self._log.partition(partition),
            self._store,
            self._config,
            self._tap,
            skip_recorded=skip_recorded,
            playbook=self.playbooks.get(connection.name),
            privacy=self.privacy,
        )

    def _add_group(self, connection: Connection) -> LaneGroup | None:
        """The connection's group, with a lane for every partition owned here; None (and the
        reason logged) when its lanes cannot be built."""
        try:
            destination, _ = self._destination(connection)
        except (SettingsError, KeyError, PlaybookError) as exc:
            logger.error("connection %s not started: %s", connection.name, exc)
            return None
        rate = connection.rate_limit or destination.default_rate_limit
        group = LaneGroup(
            connection, RateGate(rate, connection.name), rate, alone=self._coordinator.alone
        )
        group.share_rate(len(self.active), self._log.partitions)
        self.lanes[connection.name] = group
        for partition in sorted(self.active):
            self._start_partition_lane(group, partition)
        return group

    def _start_partition_lane(
        self, group: LaneGroup, partition: int, *, skip_recorded: bool = True
    ) -> None:
        try:
            lane = self._lane_for(
                group.connection, partition, group.gate, skip_recorded=skip_recorded
            )
        except (SettingsError, KeyError, PlaybookError) as exc:
            logger.error("connection %s not started: %s", group.name, exc)
            return
        group.lanes[partition] = lane
        lane.start()

    def _share_rates(self) -> None:
        for group in self.lanes.values():
            group.share_rate(len(self.active), self._log.partitions)

    async def _acquire(self, partition: int) -> None:
        async with self._lock:
            self.active.add(partition)
            self._share_rates()
            for group in self.lanes.values():
                self._start_partition_lane(group, partition)
        if not self._coordinator.alone:
            logger.info("partition %d: delivering here", partition)

    async def _release(self, partition: int) -> None:
        """Cut this process's rate share first, then stop the lanes (they finish what is in
        flight and commit); the next owner starts only after, so the shares never overlap."""
        async with self._lock:
            self.active.discard(partition)
            self._share_rates()
            lanes = [g.lanes.pop(partition) for g in self.lanes.values() if partition in g.lanes]
        await asyncio.gather(*(lane.stop() for lane in lanes))
        if not self._coordinator.alone:
            logger.info("partition %d: handed over", partition)

    async def apply(self, connection: Connection) -> None:
        """(Re)start a connection's lanes with its saved settings; their positions are kept."""
        async with self._lock:
            old = self.lanes.pop(connection.name, None)
            if old is not None:
                await old.stop()
            self._applied[connection.name] = connection
            self._add_group(connection)

    async def remove(self, name: str, *, forget_playbook: bool = True) -> None:
        async with self._lock:
            group = self.lanes.pop(name, None)
            if group is not None:
                await group.stop()
        if forget_playbook:  # the connection is gone (not just held back by its playbook)
            self._applied.pop(name, None)
            self.playbooks.pop(name, None)
            self.broken_playbooks.pop(name, None)

    # -- privacy requests --------------------------------------------------------------------

    def privacy_lane(self, name: str, person: str) -> Lane | None:
        """The running lane of this process that orders `person`'s calls for the connection:
        the lane of their partition, if this process owns it."""
        group = self.lanes.get(name)
        if group is None:
            return None
        return group.lanes.get(self._log.partition_of(person))

    async def privacy_support(self, action: str, request_id: str) -> dict[str, str]:
        """Each connection's first status for a privacy request: "pending" when its destination
        is told of `action`, "not_supported" when it has no such notion, else "failed: why"."""
        support: dict[str, str] = {}
        for connection in await self._store.list_connections():
            try:
                destination = self._destinations(connection.destination)
                settings = parse_settings(destination, connection.settings)
                operations = privacy_operations(destination, action, "-", settings, request_id)
            except (SettingsError, KeyError) as exc:
                support[connection.name] = f"failed: {exc}"
                continue
            support[connection.name] = "not_supported" if operations is None else "pending"
        return support

    # -- playbooks ---------------------------------------------------------------------------

    async def load_playbook(self, name: str) -> None:
        """Read the connection's current playbook revision and hand it to its running lanes:
        the messages they read from then on are shaped by it (no restart). A revision that no
        longer compiles keeps the connection's lanes from starting: delivering unshaped calls
        could send what the playbook exists to keep out."""
        revision = await self._store.playbook_revision(name)
        was_broken = self.broken_playbooks.pop(name, None) is not None
        active = None
        if revision is None:
            self.playbooks.pop(name, None)
        else:
            try:
                playbook = compile_revision(revision, self.playbook_dir)
            except PlaybookError as exc:
                logger.error("connection %s: playbook revision %d: %s", name, revision.number, exc)
                self.broken_playbooks[name] = (revision.number, str(exc))
                await self.remove(name, forget_playbook=False)
                return
            active = ActivePlaybook.of(revision.number, playbook)
            self.playbooks[name] = active
        group = self.lanes.get(name)
        if group is not None:
            for lane in group.lanes.values():
                lane.use_playbook(active)
        if was_broken:  # it compiles again: start the connection's lanes
            connection = await self._store.get_connection(name)
            if connection is not None:
                await self.apply(connection)

    async def sync_playbooks(self) -> None:
        """Load the revisions saved by any process since this one last looked."""
        current = await self._store.current_playbook_revisions()
        for name in [*self.lanes, *self.broken_playbooks]:
            if name in self.broken_playbooks:
                number: int | None = self.broken_playbooks[name][0]
            else:
                have = self.playbooks.get(name)
                number = have.revision if have else None
            if current.get(name) != number:
                await self.load_playbook(name)

    # -- changes made in other processes -----------------------------------------------------

    async def _watch_connections(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL)
            try:
                await self.sync_connections()
                await self.sync_playbooks()
                for name in list(self.lanes):
                    await self._take_replays(name)
            except Exception:
                logger.exception("could not reload connections or replays; will try again")

    async def sync_connections(self) -> None:
        """Apply connections saved, changed or deleted by any process."""
        stored = {c.name: c for c in await self._store.list_connections()}
        for name in set(self._applied) - set(stored):
            await self.remove(name)
        for name, connection in stored.items():
            applied = self._applied.get(name)
            if applied is None or _shape(applied) != _shape(connection):
                await self.apply(connection)

    async def _on_notice(self, notice: Notice) -> None:
        name = str(notice.get("connection", ""))
        if notice.get("kind") == "redeliver":
            await self._redeliver_here(name, float(notice["since"]))
        elif notice.get("kind") == "replay":
            await self._take_replays(name)

    # -- redelivery, replay, retention -------------------------------------------------------

    async def place_new(self, name: str, *, deliver_history: bool) -> None:
        """Where a new connection starts reading, in every partition: the head (new calls only,
        as when a destination is added in Segment) or the oldest retained entry."""
        for partition in range(self._log.partitions):
            view = self._log.partition(partition)
            start = 0 if deliver_history else await view.head()
            await view.reset_position(lane_id(name), start)

    async def redeliver_since(self, name: str, unix_time: float) -> int:
        """Send everything received since `unix_time` again (dedupe ids make it safe)."""
        if name not in self.lanes and await self._store.get_connection(name) is None:
            raise KeyError(name)
        for partition in range(self._log.partitions):
            view = self._log.partition(partition)
            await view.reset_position(lane_id(name), await view.offset_at(unix_time))
        await self._coordinator.broadcast(
            {"kind": "redeliver", "connection": name, "since": unix_time}
        )
        return await self._log.offset_at(unix_time)

    async def _redeliver_here(self, name: str, unix_time: float) -> None:
        async with self._lock:
            group = self.lanes.get(name)
            if group is None:
                return
            for partition in sorted(group.lanes):
                await group.stop_partition(partition)
                view = self._log.partition(partition)
                await view.reset_position(lane_id(name), await view.offset_at(unix_time))
                self._start_partition_lane(group, partition, skip_recorded=False)

    async def replay(self, name: str, letters: list[DeadLetter]) -> int:
        """Send dead letters again, each through the lane of its person's partition; `KeyError`
        when no process can: the connection is gone, or (alone) its lanes are not running."""
        if name not in self.lanes and (
            self._coordinator.alone or await self._store.get_connection(name) is None
        ):
            raise KeyError(name)
        by_partition: dict[int, list[int]] = {}
        for letter in letters:
            by_partition.setdefault(self._log.partition_of(letter.person), []).append(letter.id)
        for partition, ids in sorted(by_partition.items()):
            await self._coordinator.request_replay(name, partition, ids)
        await self._coordinator.broadcast({"kind": "replay", "connection": name})
        return len(letters)

    async def _take_replays(self, name: str) -> None:
        """Take the pending replay requests of the partitions whose lanes run here."""
        group = self.lanes.get(name)
        if group is None or not group.lanes:
            return
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
                    logger.info("connection %s: replaying %d dead letters here", name, count)
                return True

            await self._coordinator.take_replays(name, partition, replay)

    async def trim(self) -> int:
        """Per partition: drop entries every connection has resolved and past retention."""
        connections = await self._store.list_connections()
        cutoff = time.time() - self._retention
        removed = 0
        for partition in range(self._log.partitions):
            view = self._log.partition(partition)
            positions = [await view.position(lane_id(c.name)) for c in connections]
            floor = min(positions) if positions else await view.head()
            removed += await view.trim(floor + 1, cutoff)
        await self._store.trim(cutoff)
        return removed

    async def _retain_forever(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            try:
                removed = await self.trim()
                if removed:
                    logger.info("log retention removed %d entries", removed)
            except Exception:
                logger.exception("log retention failed; will try again")


def _shape(connection: Connection) -> tuple[Any, ...]:
    """What a lane is built from; `updated_at` alone changing (a file re-applied) is no change."""
    return (
        connection.destination,
        connection.settings,
        connection.sources,
        connection.enabled,
        connection.rate_limit,
    )
