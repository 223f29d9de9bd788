"""A connection's request rate limit, as a schedule of evenly spaced send slots.

Why not a token bucket library (aiolimiter): a bucket lets a full bucket's worth of requests out at
once, so over some one-second window a limit of 100/s can see nearly 200 requests. Customer.io
judges rate over short windows, so here each request takes the next free slot, `1/rate` seconds
after the previous one: the limit holds over every window.

On a 429 the gate stops all requests until `Retry-After` (or a short pause) and halves its rate;
the rate then climbs back by 10% per clean second towards the configured limit (AIMD, as TCP).
"""

from __future__ import annotations

import asyncio
import time

from turnout import metrics

MIN_RATE = 0.5  # requests/s: the floor a run of 429s can push the rate down to
DEFAULT_429_PAUSE = 1.0  # seconds, when a 429 carries no Retry-After
RECOVERY_PER_SECOND = 1.10


class RateGate:
    def __init__(self, rate: float, connection: str = "") -> None:
        self.limit = rate
        self.rate = rate
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_recovery = time.monotonic()
        self._lock = asyncio.Lock()
        self._waited = metrics.RATE_LIMIT_WAITS.labels(connection) if connection else None

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self._recover(now)
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + 1.0 / self.rate
        delay = slot - now
        if delay > 0:
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
