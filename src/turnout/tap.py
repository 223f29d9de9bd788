"""A live, bounded feed of what happens to messages, for the debugger.

Ingest and the lanes publish; the dashboard's stream subscribes. Publishing never blocks and never
grows memory: each subscriber has a small queue, and a subscriber too slow to keep up misses
entries (the debugger is a sample, the store is the record).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

RECENT = 200
SUBSCRIBER_QUEUE = 500


class Tap:
    def __init__(self) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, item: dict[str, Any]) -> None:
        self.recent.append(item)
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
