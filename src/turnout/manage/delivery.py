"""What the management services ask of the running delivery manager, and nothing more.

The services start, restart and stop a connection's lanes, place a new connection in the log,
hand over dead letters to replay and new playbook revisions, and read each lane's state. Naming
just those methods here keeps the services independent of how the manager is built (one log, or
a partitioned one) and lets them be built before it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from turnout.delivery.lane import LaneStatus
from turnout.store.models import Connection, DeadLetter


class LaneControl(Protocol):
    """A connection's running lane (or group of lanes) as the dashboard and the API see it."""

    def status(self) -> LaneStatus: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Delivery(Protocol):
    @property
    def lanes(self) -> Mapping[str, LaneControl]:
        """The running lanes by connection name."""
        ...

    async def apply(self, connection: Connection) -> None:
        """Start or restart the connection's lanes with these settings, position kept."""
        ...

    async def remove(self, name: str) -> None:
        """Stop the connection's lanes and forget their position."""
        ...

    async def place_new(self, name: str, *, deliver_history: bool) -> None:
        """Start a new connection at the log's head, or at its oldest call."""
        ...

    async def redeliver_since(self, name: str, unix_time: float) -> int:
        """Deliver everything received since `unix_time` again; the log offset it starts from."""
        ...

    async def replay(self, name: str, letters: list[DeadLetter]) -> int:
        """Queue dead letters to be sent again; how many were queued. `KeyError` when the
        connection has no running lane."""
        ...

    async def load_playbook(self, name: str) -> None:
        """Hand the connection's current playbook revision to its running lanes."""
        ...
