"""A record of every request, for tests to assert on what a client actually sent.

Only the newest `limit` requests are kept (a deque), so a long benchmark cannot exhaust memory,
while the counters (total, per status, per endpoint) stay exact for the whole run.

The record also counts, per event dedupe id, how many requests carried it, whatever their
answer. The read model drops an event whose id it has seen, so it cannot tell a client that
sends an event once from one that sends it five times; this count can.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec


class RecordedRequest(msgspec.Struct, kw_only=True):
    seq: int
    method: str
    path: str  # the raw path, still percent-encoded
    query: str
    endpoint: str  # the route template, e.g. "PUT /api/v1/customers/{identifier}"
    headers: dict[str, str]
    body: Any  # parsed JSON (None when absent, the text when it was not JSON)
    body_size: int
    received_at: float  # unix seconds
    status: int = 0  # 0 while being handled, -1 when the connection was dropped
    fault: str | None = None
    answered_at: float = 0.0  # unix seconds, once the answer was sent (or the connection dropped)


class RequestLog:
    """The recorded requests (newest `limit`) and exact counters over all of them."""

    def __init__(self, limit: int = 10_000) -> None:
        self._records: deque[RecordedRequest] = deque(maxlen=max(0, limit))
        self._lock = threading.Lock()
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.sends_by_id: Counter[str] = Counter()  # event dedupe id -> requests that carried it

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._records = deque(self._records, maxlen=max(0, limit))

    def start(self, record: RecordedRequest, event_ids: Iterable[str] = ()) -> None:
        with self._lock:
            self.total += 1
            record.seq = self.total
            self._records.append(record)
            self.by_endpoint[record.endpoint] += 1
            self.sends_by_id.update(event_ids)

    def finish(self, record: RecordedRequest, status: int) -> None:
        record.status = status
        record.answered_at = time.time()
        self.by_status[status] += 1

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self.total = 0
            self.by_status.clear()
            self.by_endpoint.clear()
            self.sends_by_id.clear()

    def __iter__(self) -> Iterator[RecordedRequest]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> RecordedRequest:
        with self._lock:
            return self._records[index]

    @property
    def last(self) -> RecordedRequest | None:
        with self._lock:
            return self._records[-1] if self._records else None

    def matching(self, method: str | None = None, path_prefix: str | None = None,
                 endpoint: str | None = None) -> list[RecordedRequest]:
        return [
            r for r in self
            if (method is None or r.method == method)
            and (path_prefix is None or r.path.startswith(path_prefix))
            and (endpoint is None or r.endpoint == endpoint)
        ]

    def counters(self) -> dict[str, Any]:
        return {"total": self.total, "kept": len(self._records),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "by_endpoint": dict(self.by_endpoint)}

    def sends(self) -> dict[str, Any]:
        """Event ids sent, the requests that carried them, and every id carried more than once."""
        with self._lock:
            counts = dict(self.sends_by_id)
        return {"ids": len(counts), "sends": sum(counts.values()),
                "repeated": {i: n for i, n in counts.items() if n > 1}}


_ACTIVITY_ACTIONS = frozenset({"event", "page", "screen"})


def event_ids(endpoint: str, body: Any) -> list[str]:
    """The dedupe ids a Track request carries: the `id` of a v1 event body, of a v2 entity and
    of each v2 batch item that is an event, page or screen."""
    if not isinstance(body, dict):
        return []
    if endpoint == "POST /api/v2/batch":
        items = body.get("batch")
        if not isinstance(items, list):
            return []
    elif endpoint == "POST /api/v2/entity" or endpoint.endswith("/events"):
        items = [body]
    else:
        return []
    return [
        item["id"] for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), str)
        and item.get("action", "event") in _ACTIVITY_ACTIONS
    ]
