"""Looking up what became of messages: traces, dead letters (and replaying them), rejects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from turnout.store.models import DeadLetter
from turnout.web.errors import ManagementError, not_found
from turnout.web.views import dead_letter_view, delivery_view, reject_view

if TYPE_CHECKING:
    from turnout.app import Turnout

REPLAY_MAX = 100_000  # dead letters one "replay all matching" may queue


@dataclass(slots=True)
class LetterFilter:
    """Which dead letters a list or a "replay all matching" applies to."""

    connection: str | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None
    message_id: str | None = None


class Deliveries:
    def __init__(self, turnout: Turnout) -> None:
        self._turnout = turnout
        self._store = turnout.store

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

    async def dead_letters_count(self, connection: str) -> int:
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

    async def _replay(self, connection: str, letters: list[DeadLetter]) -> int:
        if not letters:
            return 0
        try:
            return await self._turnout.delivery.replay(connection, letters)
        except KeyError:
            raise ManagementError(
                409,
                "not_running",
                f"connection {connection!r} is not running (fix its settings first)",
            ) from None

    async def trace(self, message_id: str) -> dict[str, Any]:
        """Every connection's record of one message, and its dead letters with the payload."""
        records = await self._store.trace(message_id)
        letters = await self._store.dead_letters(
            message_id=message_id, include_replayed=True, limit=50
        )
        if not records and not letters:
            raise not_found("message", message_id)
        return {
            "message_id": message_id,
            "deliveries": [delivery_view(r) for r in records],
            "dead_letters": [dead_letter_view(d, with_payload=True) for d in letters],
        }

    async def rejects(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rejects = await self._store.rejects(limit if source is None else 1000)
        found = [reject_view(r) for r in rejects if source is None or r.source == source]
        return found[:limit]
