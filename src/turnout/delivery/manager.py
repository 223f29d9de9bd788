"""Runs one lane per connection, and applies what users change while they run.

Saving a connection restarts just its lane (its position in the log is kept, so nothing is lost
or sent twice); pausing keeps the backlog in the log; re-delivering from a point in time moves
the lane's position back. Retention trims the log only below the position of every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from turnout.config import DeliveryConfig
from turnout.delivery.gate import RateGate
from turnout.delivery.lane import Lane
from turnout.delivery.lane_group import LaneGroup
from turnout.delivery.shaping import ActivePlaybook
from turnout.destinations.base import (
    Destination,
    SettingsError,
    parse_settings,
    privacy_operations,
)
from turnout.log.base import EventLog
from turnout.playbooks import PlaybookError
from turnout.playbooks.revisions import compile_revision
from turnout.privacy.suppression import PrivacyList
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter
from turnout.tap import Tap

log = logging.getLogger("turnout.delivery")

RETENTION_INTERVAL = 600.0  # seconds between log trims

__all__ = ["DeliveryManager", "SettingsError", "parse_settings"]  # the last two: the contract's


class DeliveryManager:
    def __init__(
        self,
        log_: EventLog,
        store: StateStore,
        destinations: Callable[[str], Destination],
        config: DeliveryConfig,
        tap: Tap,
        retention_hours: float,
    ) -> None:
        self._log = log_
        self._store = store
        self._destinations = destinations
        self._config = config
        self._tap = tap
        self._retention = retention_hours * 3600
        self.lanes: dict[str, Lane | LaneGroup] = {}
        # Each connection's current playbook revision, compiled; and the revisions that do not
        # compile (a function's file gone): their connection's lanes are not started.
        self.playbook_dir: Path | None = None  # where functions' files are (set by the app)
        self.playbooks: dict[str, ActivePlaybook] = {}
        self.broken_playbooks: dict[str, tuple[int, str]] = {}
        self.privacy: PrivacyList | None = None  # who no lane may deliver (set by the app)
        self._lock = asyncio.Lock()
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for connection in await self._store.list_connections():
            await self.load_playbook(connection.name)
            await self._start_lane(connection)
        self._housekeeping = asyncio.create_task(self._retain_forever(), name="log-retention")

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await asyncio.gather(*(lane.stop() for lane in self.lanes.values()))
        self.lanes.clear()

    def lane_for(
        self,
        connection: Connection,
        *,
        skip_recorded: bool = True,
        log_: EventLog | None = None,
        gate: RateGate | None = None,
    ) -> Lane:
        """A lane for the connection; on a partitioned log, `log_` is one partition's view and
        `gate` the rate gate the connection's lanes in this process share."""
        broken = self.broken_playbooks.get(connection.name)
        if broken is not None:
            raise PlaybookError(f"playbook revision {broken[0]} cannot be loaded: {broken[1]}")
        destination = self._destinations(connection.destination)
        settings = parse_settings(destination, connection.settings)
        if gate is None:
            gate = RateGate(
                connection.rate_limit or destination.default_rate_limit, connection.name
            )
        return Lane(
            connection,
            destination,
            settings,
            destination.client(settings, gate),
            log_ or self._log,
            cast(Any, self._store),
            self._config,
            self._tap,
            skip_recorded=skip_recorded,
            playbook=self.playbooks.get(connection.name),
            privacy=self.privacy,
        )

    # -- privacy requests --------------------------------------------------------------------

    def privacy_lane(self, name: str, person: str) -> Lane | None:
        """The running lane of this process that orders `person`'s calls for the connection
        (on a partitioned log, the lane of their partition, if this process owns it)."""
        lane = self.lanes.get(name)
        if isinstance(lane, LaneGroup):
            partition_of = getattr(self._log, "partition_of", None)
            return lane.lanes.get(partition_of(person)) if partition_of else None
        return lane

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
                log.error("connection %s: playbook revision %d: %s", name, revision.number, exc)
                self.broken_playbooks[name] = (revision.number, str(exc))
                await self.remove(name, forget_playbook=False)
                return
            active = ActivePlaybook.of(revision.number, playbook)
            self.playbooks[name] = active
        for lane in self._lanes_named(name):
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

    def _lanes_named(self, name: str) -> list[Lane]:
        lane = self.lanes.get(name)
        if lane is None:
            return []
        return [lane] if isinstance(lane, Lane) else list(lane.lanes.values())

    async def _start_lane(self, connection: Connection, *, skip_recorded: bool = True) -> None:
        try:
            lane = self.lane_for(connection, skip_recorded=skip_recorded)
        except (SettingsError, KeyError, PlaybookError) as exc:
            log.error("connection %s not started: %s", connection.name, exc)
            return
        self.lanes[connection.name] = lane
        lane.start()

    async def apply(self, connection: Connection) -> None:
        """(Re)start a connection's lane with its saved settings; its position is kept."""
        async with self._lock:
            old = self.lanes.pop(connection.name, None)
            if old is not None:
                await old.stop()
            await self._start_lane(connection)

    async def remove(self, name: str, *, forget_playbook: bool = True) -> None:
        async with self._lock:
            lane = self.lanes.pop(name, None)
            if lane is not None:
                await lane.stop()
        if forget_playbook:
            self.playbooks.pop(name, None)
            self.broken_playbooks.pop(name, None)

    async def place_new(self, name: str, *, deliver_history: bool) -> None:
        """Where a new connection starts reading: the log's head (new calls only, as when a
        destination is added in Segment) or its oldest retained entry."""
        start = 0 if deliver_history else await self._log.head()
        await self._log.reset_position(f"connection:{name}", start)

    async def redeliver_since(self, name: str, unix_time: float) -> int:
        """Send everything received since `unix_time` again (dedupe ids make it safe)."""
        async with self._lock:
            lane = self.lanes.pop(name, None)
            connection = lane.connection if lane else await self._store.get_connection(name)
            if connection is None:
                raise KeyError(name)
            if lane is not None:
                await lane.stop()
            offset = await self._log.offset_at(unix_time)
            await self._log.reset_position(f"connection:{name}", offset)
            await self._start_lane(connection, skip_recorded=False)
            return offset

    async def replay(self, name: str, letters: list[DeadLetter]) -> int:
        lane = self.lanes.get(name)
        if not isinstance(lane, Lane):  # a partitioned log replays per partition (its override)
            raise KeyError(name)
        return lane.replay(letters)

    async def trim(self) -> int:
        """Drop log entries every connection has resolved and that are past retention."""
        connections = await self._store.list_connections()
        positions = [await self._log.position(f"connection:{c.name}") for c in connections]
        floor = min(positions) if positions else await self._log.head()
        cutoff = time.time() - self._retention
        removed = await self._log.trim(floor + 1, cutoff)
        await self._store.trim(cutoff)
        return removed

    async def _retain_forever(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL)
            try:
                removed = await self.trim()
                if removed:
                    log.info("log retention removed %d entries", removed)
            except Exception:
                log.exception("log retention failed; will try again")
