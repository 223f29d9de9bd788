"""A connection's request rate limit: at most `rate` requests in any one-second window.

Why not a token bucket library (aiolimiter): a bucket refilled continuously lets a full bucket
out at once and then the refill rate, so some one-second window sees nearly twice the limit.
Why not evenly spaced slots either: a slot not taken on time is lost for good, and a busy
process (the lane competes for the CPU) then stays below its limit. A sliding window of the
last second's send times keeps the limit exact over every window and lets a late sender use
the capacity it has not used yet.

On a 429 the gate stops all requests until `Retry-After` (or a short pause) and halves its rate;
the rate then climbs back by 10% per clean second towards the configured limit (AIMD, as TCP).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from turnout import metrics

WINDOW = 1.0  # seconds: the limit is "requests per second", over every such window
MIN_RATE = 0.5  # requests/s: the floor a run of 429s can push the rate down to
DEFAULT_429_PAUSE = 1.0  # seconds, when a 429 carries no Retry-After
RECOVERY_PER_SECOND = 1.10


class RateGate:
    def __init__(self, rate: float, connection: str = "") -> None:
        self.limit = rate
        self.rate = rate
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._last_recovery = time.monotonic()
        self._lock = asyncio.Lock()
        self._waited = metrics.RATE_LIMIT_WAITS.labels(connection) if connection else None

    async def acquire(self) -> None:
        """Wait for a place in the window; callers queue fairly behind the lock."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._recover(now)
                while self._sent and self._sent[0] <= now - WINDOW:
                    self._sent.popleft()
                allowed = max(1, int(self.rate * WINDOW))
                if now >= self._paused_until and len(self._sent) < allowed:
                    self._sent.append(now)
                    return
                wake = max(self._paused_until, self._sent[0] + WINDOW if self._sent else now)
                delay = max(wake - now, 0.001)
                if self._waited is not None:
                    self._waited.inc(delay)
                await asyncio.sleep(delay)

    def slow_down(self, retry_after: float | None) -> None:
        now = time.monotonic()
        self._paused_until = max(self._paused_until, now + (retry_after or DEFAULT_429_PAUSE))
        self.rate = max(MIN_RATE, self.rate / 2)
        self._last_recovery = self._paused_until

    def _recover(self, now: float) -> None:
        if self.rate >= self.limit:
            return
        elapsed = now - self._last_recovery
        if elapsed >= 1.0:
            self.rate = min(self.limit, self.rate * RECOVERY_PER_SECOND ** int(elapsed))
            self._last_recovery = now
