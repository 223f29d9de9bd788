"""A live, bounded feed of what happens to messages, for the debugger.

Ingest and the lanes publish; the dashboard's stream subscribes. Publishing never blocks and never
grows memory: each subscriber has a small queue, and a subscriber too slow to keep up misses
entries (the debugger is a sample, the store is the record). Nothing is kept for later
subscribers: a stream starts from the record (log and store), which also survives a restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

SUBSCRIBER_QUEUE = 500


class Tap:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, item: dict[str, Any]) -> None:
        for queue in self._subscribers:
            if queue.qsize() < SUBSCRIBER_QUEUE:
                queue.put_nowait(item)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    @property
    def listening(self) -> bool:
        return bool(self._subscribers)
