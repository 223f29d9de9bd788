"""A token bucket, the shape of Customer.io's documented "3000 requests per 3 seconds" (ref §6.2).

The bucket holds up to `requests` tokens and refills at `requests / period` per second, so a
client may burst to the full allowance and then sustain the average rate. Whether the real Track
API answers 429 at all is UNCONFIRMED; the emulator only does when the limit is switched on.
"""

from __future__ import annotations

import math
import threading
import time


class TokenBucket:
    def __init__(self, requests: int, period: float) -> None:
        self.capacity = float(requests)
        self.rate = requests / period
        self._tokens = self.capacity
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """Take one token; None when granted, else the whole seconds to wait (Retry-After)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._tokens) / self.rate))
