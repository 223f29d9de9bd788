"""A connection's request rate limit: at most `rate` requests in any one-second window, as the
destination counts them.

Why not a token bucket library (aiolimiter): a bucket refilled continuously lets a full bucket
out at once and then the refill rate, so some one-second window sees nearly twice the limit.
Why not evenly spaced slots either: a slot not taken on time is lost for good, and a busy
process (the lane competes for the CPU) then stays below its limit.

A request holds its place in the window from the moment it is let through until one second
after its answer arrived, not after it was sent. The destination counts arrivals, and an arrival
lies somewhere between sending and answer: a window of send times alone lets a slow request and
a fast one that follows it a second later arrive within the same second, and showed 14 to 17
requests in one receiver second for a limit of 10. Held until answered + 1 s, no arrival second
can hold more than the limit. The cost is one round trip per request per second: at 100
requests/s and 20 ms answers, 98 requests/s.

On a 429 the gate stops all requests until `Retry-After` (or a short pause) and halves its rate;
the rate then climbs back by 10% per clean second towards the configured limit (AIMD, as TCP).
A new limit (a process's share on a partitioned log) applies at once when lower, and one window
later when higher, so the process that gave up that share has left the window first.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

from turnout import metrics
from turnout.destinations.base import Unlimited

__all__ = ["RateGate", "Unlimited"]  # Unlimited belongs to the destination contract

WINDOW = 1.0  # seconds: the limit is "requests per second", over every such window
MIN_RATE = 0.5  # requests/s: the floor a run of 429s can push the rate down to
DEFAULT_429_PAUSE = 1.0  # seconds, when a 429 carries no Retry-After
RECOVERY_PER_SECOND = 1.10
IN_FLIGHT_POLL = 0.01  # seconds: how often a full window of unanswered requests is looked at


class RateGate:
    def __init__(self, rate: float, connection: str = "") -> None:
        self.limit = rate
        self.rate = rate
        # One mutable [time] per request in the window: math.inf while it waits for its answer.
        self._held: list[list[float]] = []
        self._raise: tuple[float, float] | None = None  # (limit, when)
        self._paused_until = 0.0
        self._last_recovery = time.monotonic()
        self._lock = asyncio.Lock()
        self._waited = metrics.RATE_LIMIT_WAITS.labels(connection) if connection else None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a place in the window for one request, from now until a second after it ends."""
        held = await self._take()
        try:
            yield
        finally:
            held[0] = time.monotonic()

    async def _take(self) -> list[float]:
        """Wait for a place in the window; callers queue fairly behind the lock."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._apply_raise(now)
                self._recover(now)
                horizon = now - WINDOW
                self._held = [h for h in self._held if h[0] > horizon]
                allowed = max(1, int(self.rate * WINDOW))
                if now >= self._paused_until and len(self._held) < allowed:
                    held = [math.inf]
                    self._held.append(held)
                    return held
                if now < self._paused_until:
                    delay = self._paused_until - now
                else:  # the window is full: until its oldest answered place leaves it
                    oldest = min(h[0] for h in self._held)
                    delay = oldest + WINDOW - now if oldest < math.inf else IN_FLIGHT_POLL
                delay = max(delay, 0.001)
                if self._waited is not None:
                    self._waited.inc(delay)
                await asyncio.sleep(delay)

    def set_limit(self, limit: float) -> None:
        """Lower at once; higher only one window from now (see the module's docstring)."""
        if limit > self.limit:
            self._raise = (limit, time.monotonic() + WINDOW)
            return
        self._raise = None
        if self.rate >= self.limit or self.rate > limit:
            self.rate = limit  # not slowed by a 429 (or slowed above the new limit)
        self.limit = limit

    def _apply_raise(self, now: float) -> None:
        if self._raise is None or now < self._raise[1]:
            return
        limit, self._raise = self._raise[0], None
        if self.rate >= self.limit:
            self.rate = limit
        self.limit = limit

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
