"""When to try a failed send again.

Exponential backoff with full jitter (so a thousand people failing together do not retry
together, the retry storm users complain about), starting at one second and capped; a
destination's `Retry-After` wins when it asks for longer.
"""

from __future__ import annotations

import random

BASE_DELAY = 1.0


def retry_delay(attempt: int, retry_after: float | None, cap: float) -> float:
    """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1)."""
    ceiling = min(cap, BASE_DELAY * 2 ** min(attempt - 1, 30))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
