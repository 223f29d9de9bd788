"""Looking up what became of messages: one message's trace, every call of one person, the
newest calls, the calls refused at ingest, and the calls as they arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from turnout.history import PERSON_PAGE, History, Identity, PersonCalls, StoredCall
from turnout.manage.errors import not_found
from turnout.manage.views import dead_letter_view, delivery_view, reject_view
from turnout.store.base import StateStore
from turnout.store.models import DeliveryRecord
from turnout.tap import Tap


class Messages:
    def __init__(self, store: StateStore, history: History, tap: Tap) -> None:
        self._store = store
        self._history = history
        self._tap = tap

    async def deliveries(self, message_id: str) -> list[DeliveryRecord]:
        """Every connection's record of one message (empty: not received, or not yet read)."""
        return await self._store.trace(message_id)

    async def trace(self, message_id: str) -> dict[str, Any]:
        """Every connection's record of one message, and its dead letters with the payload."""
        records = await self.deliveries(message_id)
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

    async def person(
        self, identity: Identity, value: str, *, after: int = 0, limit: int = PERSON_PAGE
    ) -> PersonCalls:
        """Every call of one userId or anonymousId the log keeps, in order, with its fates."""
        return await self._history.person(identity, value, after=after, limit=limit)

    async def recent(
        self, admits: Callable[[dict[str, Any]], bool], limit: int
    ) -> list[StoredCall]:
        """The newest calls the log keeps that `admits` accepts, oldest first, with their fates."""
        return await self._history.recent(admits, limit)

    async def rejects(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rejects = await self._store.rejects(limit if source is None else 1000)
        found = [reject_view(r) for r in rejects if source is None or r.source == source]
        return found[:limit]

    def follow(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of what happens from now on (calls received and refused, fates recorded);
        give it back with `unfollow`."""
        return self._tap.subscribe()

    def unfollow(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._tap.unsubscribe(queue)
