"""How a lane paces its requests when Customer.io pushes back, read from the emulator's clock.

The emulator records when each request arrived and when it was answered. From those times:
after a 429 with `Retry-After`, the connection sends nothing for that long; its rate is halved,
then climbs back by 10% per second to the limit; and retries never wait longer than
`[delivery] max_backoff_s`. The bounds are what the design allows, so a slow machine can only
make the counts smaller, never break them; what must happen (the limit reached, the rate
recovered, the retries made) is waited for with a deadline.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

from support import TurnoutProcess, started_url, wait_until, write_config
from turnout.delivery.gate import RECOVERY_PER_SECOND
from turnout.emulators.customerio import CustomerIOEmulator, RecordedRequest

LIMIT = 10  # requests/s
CONCURRENCY = 2
RETRY_AFTER = 2  # seconds
MAX_BACKOFF = 2.0  # seconds
# What a retry may take beyond its delay: waking the lane, the request's way to the emulator.
RETRY_OVERHEAD = 1.0  # seconds


def _batches(emulator: CustomerIOEmulator) -> list[RecordedRequest]:
    return sorted(
        (r for r in emulator.requests if r.endpoint == "POST /api/v2/batch"),
        key=lambda r: r.received_at,
    )


def _in_window(requests: list[RecordedRequest], start: float) -> int:
    """Requests that arrived in the second from `start`."""
    return sum(1 for r in requests if start <= r.received_at < start + 1.0)


def _busiest_second(requests: list[RecordedRequest], after: float = 0.0) -> int:
    return max(
        (_in_window(requests, r.received_at) for r in requests if r.received_at >= after), default=0
    )


def test_a_429_pauses_the_connection_for_retry_after_halves_its_rate_then_it_recovers(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(
        tmp_path,
        started_url(emulator),
        extra=f"concurrency = {CONCURRENCY}",
        connection=f"rate_limit = {LIMIT}",
        settings="batch_size = 1",  # one event per request: requests are what the gate paces
    )
    with TurnoutProcess(config) as turnout:
        for start in range(0, 400, 100):
            batch = [
                {"type": "track", "userId": f"p{n}", "event": "Paced"}
                for n in range(start, start + 100)
            ]
            assert turnout.post("/v1/batch", {"batch": batch}).status_code == 200
        wait_until(
            lambda: _busiest_second(_batches(emulator)) >= LIMIT, timeout=60, what="the limit used"
        )
        emulator.faults.throttle_next(1, retry_after=RETRY_AFTER)
        throttled = wait_until(
            lambda: next((r for r in _batches(emulator) if r.status == 429), None),
            timeout=30,
            what="the 429",
        )
        resumed = throttled.answered_at + RETRY_AFTER
        wait_until(
            lambda: _busiest_second(_batches(emulator), after=resumed) >= LIMIT - 1,
            timeout=60,
            what="the rate back near the limit",
        )
    requests = _batches(emulator)
    before = [r for r in requests if r.received_at < throttled.received_at]
    assert _busiest_second(before) == LIMIT  # the limit was used, and held, before the 429

    # Nothing sent during Retry-After, but what was already on its way when the 429 came back.
    paused = [r for r in requests if throttled.answered_at < r.received_at < resumed]
    assert len(paused) <= CONCURRENCY - 1, [r.received_at - throttled.answered_at for r in paused]

    # Then at most half the limit in a second, climbing by 10% per second at most: in the
    # second from `start`, the gate allowed int(LIMIT / 2 * 1.1 ** whole seconds since resuming).
    after = [r for r in requests if r.received_at >= resumed]
    for request in after:
        seconds = math.floor(request.received_at + 1.0 - resumed)
        allowed = int(min(LIMIT, LIMIT / 2 * RECOVERY_PER_SECOND**seconds))
        sent = _in_window(after, request.received_at)
        assert sent <= allowed, (
            f"{sent} requests in the second from {request.received_at - resumed:.2f}s after"
            f" the pause; allowed {allowed}"
        )
    assert _busiest_second([r for r in after if r.received_at < resumed + 1.0]) <= LIMIT // 2


def test_retries_never_wait_longer_than_max_backoff(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator), extra=f"max_backoff_s = {MAX_BACKOFF}")
    outage = 12.0  # uncapped, the backoff would reach 4-8 s between the 4th and 5th attempts
    with TurnoutProcess(config) as turnout:
        emulator.faults.fail_for(outage, status=503)
        assert turnout.post("/v1/track", {"userId": "b1", "event": "Backed Off"}).status_code == 200
        wait_until(
            lambda: any(r.status == 200 for r in _batches(emulator)),
            timeout=60,
            what="the event, once the outage is over",
        )
    attempts = [r.received_at for r in _batches(emulator)]
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert max(gaps) <= MAX_BACKOFF + RETRY_OVERHEAD, gaps
    assert len(attempts) >= 6, gaps
    # ...while still backing off: 0.5-1 s after the first failure, then at least half the cap.
    assert gaps[0] >= 0.5 and min(gaps[1:]) >= MAX_BACKOFF / 2, gaps
