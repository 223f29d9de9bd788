"""One connection's lanes: one lane per partition of the log this process delivers.

Why a group: the dashboard and the management API speak of a connection's lane (its state,
backlog, pause, resume); on a log shared by several processes a connection has one lane per
owned partition. The group answers for all of them together, and shares one rate gate between
them, sized to this process's part of the connection's rate limit. A process delivering alone
owns every partition, so the whole limit is its own, and on a log of one partition the group's
state is its one lane's, word for word.
"""

from __future__ import annotations

import asyncio
import logging

from turnout.delivery.gate import MIN_RATE, RateGate
from turnout.delivery.lane import Lane, LaneState, LaneStatus
from turnout.store.models import Connection

logger = logging.getLogger("turnout.delivery")


class LaneGroup:
    def __init__(
        self, connection: Connection, gate: RateGate, rate: float, *, alone: bool = False
    ) -> None:
        self.connection = connection
        self.name = connection.name
        self.gate = gate
        self.rate = rate  # the connection's whole limit, across every process
        self.alone = alone  # no other process delivers this connection
        self.lanes: dict[int, Lane] = {}

    def share_rate(self, owned: int, partitions: int) -> None:
        """This process sends for `owned` of `partitions`: it gets that part of the limit, so
        the processes together never exceed it, whatever the spread of partitions."""
        if owned == partitions:
            limit = self.rate
        else:
            limit = max(MIN_RATE, self.rate * owned / partitions) if owned else MIN_RATE
        if limit != self.gate.limit and not self.alone:
            logger.info(
                "connection %s: %.2f requests/s here (%d of %d partitions)",
                self.name,
                limit,
                owned,
                partitions,
            )
        self.gate.set_limit(limit)

    def status(self) -> LaneStatus:
        statuses = [lane.status() for lane in self.lanes.values()]
        if self.alone and len(statuses) == 1:
            return statuses[0]
        if not self.connection.enabled:
            state = LaneState.PAUSED
        elif any(s.state is LaneState.CREDENTIALS_REJECTED for s in statuses):
            state = LaneState.CREDENTIALS_REJECTED
        else:
            state = LaneState.RUNNING
        details = sorted({s.detail for s in statuses if s.detail})
        if not self.alone:
            owned = ",".join(str(p) for p in sorted(self.lanes)) or "none"
            details.append(f"partitions owned here: {owned}")
        return LaneStatus(
            state=state,
            position=min((s.position for s in statuses), default=0),
            held=sum(s.held for s in statuses),
            blocked_people=sum(s.blocked_people for s in statuses),
            spilled_people=sum(s.spilled_people for s in statuses),
            in_flight=sum(s.in_flight for s in statuses),
            detail="; ".join(details),
        )

    def pause(self) -> None:
        self.connection.enabled = False
        for lane in self.lanes.values():
            lane.pause()

    def resume(self) -> None:
        self.connection.enabled = True
        for lane in self.lanes.values():
            lane.resume()

    async def stop_partition(self, partition: int) -> None:
        lane = self.lanes.pop(partition, None)
        if lane is not None:
            await lane.stop()

    async def stop(self) -> None:
        lanes, self.lanes = self.lanes, {}
        await asyncio.gather(*(lane.stop() for lane in lanes.values()))
