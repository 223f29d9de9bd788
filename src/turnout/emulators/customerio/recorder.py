"""A record of every request, for tests to assert on what a client actually sent.

Only the newest `limit` requests are kept (a deque), so a long benchmark cannot exhaust memory,
while the counters (total, per status, per endpoint) stay exact for the whole run.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
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


class RequestLog:
    """The recorded requests (newest `limit`) and exact counters over all of them."""

    def __init__(self, limit: int = 10_000) -> None:
        self._records: deque[RecordedRequest] = deque(maxlen=max(0, limit))
        self._lock = threading.Lock()
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.by_endpoint: Counter[str] = Counter()

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._records = deque(self._records, maxlen=max(0, limit))

    def start(self, record: RecordedRequest) -> None:
        with self._lock:
            self.total += 1
            record.seq = self.total
            self._records.append(record)
            self.by_endpoint[record.endpoint] += 1

    def finish(self, record: RecordedRequest, status: int) -> None:
        record.status = status
        self.by_status[status] += 1

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self.total = 0
            self.by_status.clear()
            self.by_endpoint.clear()

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
