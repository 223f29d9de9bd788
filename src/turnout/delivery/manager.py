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
from typing import Any, cast

import msgspec

from turnout.config import DeliveryConfig
from turnout.delivery.gate import RateGate
from turnout.delivery.lane import Lane
from turnout.delivery.lane_group import LaneGroup
from turnout.destinations.base import Destination
from turnout.log.base import EventLog
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter
from turnout.tap import Tap

log = logging.getLogger("turnout.delivery")

RETENTION_INTERVAL = 600.0  # seconds between log trims


class SettingsError(ValueError):
    """A connection's settings do not fit its destination; the message names the field."""


def parse_settings(destination: Destination, settings: dict[str, Any]) -> Any:
    try:
        return msgspec.convert(settings, destination.settings_type, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"settings: {exc}".replace("$.", "")) from None


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
        self._lock = asyncio.Lock()
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for connection in await self._store.list_connections():
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
        )

    async def _start_lane(self, connection: Connection, *, skip_recorded: bool = True) -> None:
        try:
            lane = self.lane_for(connection, skip_recorded=skip_recorded)
        except (SettingsError, KeyError) as exc:
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

    async def remove(self, name: str) -> None:
        async with self._lock:
            lane = self.lanes.pop(name, None)
            if lane is not None:
                await lane.stop()

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
