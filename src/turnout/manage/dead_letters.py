"""Getting failed messages delivered again: dead letters listed, inspected and replayed, or
everything a connection received since a time redelivered."""

from __future__ import annotations

from dataclasses import dataclass

from turnout.manage.connections import Connections
from turnout.manage.delivery import Delivery
from turnout.manage.errors import ManagementError, not_found
from turnout.store.base import StateStore
from turnout.store.models import DeadLetter

REPLAY_MAX = 100_000  # dead letters one "replay all matching" may queue


@dataclass(slots=True)
class LetterFilter:
    """Which dead letters a list or a "replay all matching" applies to."""

    connection: str | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None
    message_id: str | None = None


class DeadLetters:
    """`delivers` is false in a process that runs no lanes (`--role ingest`): it lists dead
    letters but cannot redeliver."""

    def __init__(
        self, store: StateStore, delivery: Delivery, connections: Connections, *, delivers: bool
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._connections = connections
        self._delivers = delivers

    async def dead_letters(
        self, where: LetterFilter, *, include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        return await self._store.dead_letters(
            where.connection,
            since=where.since,
            until=where.until,
            reason=where.reason or None,
            message_id=where.message_id or None,
            include_replayed=include_replayed,
            limit=limit,
        )

    async def count(self, connection: str) -> int:
        """Unreplayed dead letters of a connection (counted up to REPLAY_MAX)."""
        return len(await self._store.dead_letters(connection, limit=REPLAY_MAX))

    async def dead_letter(self, letter_id: int) -> DeadLetter:
        letter = await self._store.get_dead_letter(letter_id)
        if letter is None:
            raise not_found("dead letter", letter_id)
        return letter

    async def replay_one(self, letter_id: int) -> int:
        letter = await self.dead_letter(letter_id)
        if letter.replayed_at is not None:
            raise ManagementError(409, "already_replayed", "this dead letter was already replayed")
        return await self._replay(letter.connection, [letter])

    async def replay_matching(self, where: LetterFilter) -> int:
        """Queue every unreplayed dead letter matching the filter; one connection at a time."""
        if not where.connection:
            raise ManagementError(
                422, "invalid", "connection: name the connection to replay", "connection"
            )
        if await self._store.get_connection(where.connection) is None:
            raise not_found("connection", where.connection)
        letters = await self.dead_letters(where, limit=REPLAY_MAX)
        return await self._replay(where.connection, letters)

    async def redeliver_since(self, name: str, since: float) -> int:
        """Send everything the connection received since `since` again (dedupe ids make the
        repeats harmless); the log offset redelivery starts from."""
        await self._connections.get(name)
        if not self._delivers:
            raise ManagementError(409, "not_running", "this process does not deliver (role)")
        return await self._delivery.redeliver_since(name, since)

    async def _replay(self, connection: str, letters: list[DeadLetter]) -> int:
        if not letters:
            return 0
        try:
            return await self._delivery.replay(connection, letters)
        except KeyError:
            raise ManagementError(
                409,
                "not_running",
                f"connection {connection!r} is not running (fix its settings first)",
            ) from None
