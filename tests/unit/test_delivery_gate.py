"""The rate limit holds over every one-second window, and backs off on 429.

Nothing here asserts how fast a loaded machine runs: the tests send a fixed number of requests
(with a deadline) and check what the gate allows (never more than the limit in a window, never
before a pause ends), what it chose to wait (the wait metric counts the sleeps it asked for, not
how long the machine took to wake it), and its rate arithmetic at given instants.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable

from turnout.delivery.gate import RECOVERY_PER_SECOND, RateGate
from turnout.metrics import REGISTRY

DEADLINE = 60.0  # seconds: far beyond what any run needs; a hang fails instead of blocking


def _gate(rate: float) -> tuple[RateGate, str]:
    connection = f"gate-test-{uuid.uuid4().hex[:8]}"
    return RateGate(rate, connection), connection


def _waited(connection: str) -> float:
    """Seconds of waiting the gate asked for (the sum of the sleeps it chose)."""
    value = REGISTRY.get_sample_value(
        "turnout_delivery_rate_limit_wait_seconds_total", {"connection": connection}
    )
    return value or 0.0


async def _send(
    gate: RateGate, count: int, senders: int = 8, latency: Callable[[int], float] = lambda _: 0
) -> list[tuple[float, float]]:
    """Send `count` requests through the gate; each "arrives" at a random point of its round
    trip. Returns (admitted, arrived) monotonic times, sorted by arrival."""
    sent: list[tuple[float, float]] = []
    taken = 0

    async def sender() -> None:
        nonlocal taken
        while taken < count:
            taken += 1
            round_trip = latency(taken)
            async with gate.slot():
                started = time.monotonic()
                await asyncio.sleep(round_trip)
                sent.append((started, started + random.uniform(0, round_trip)))

    await asyncio.wait_for(asyncio.gather(*(sender() for _ in range(senders))), DEADLINE)
    return sorted(sent, key=lambda s: s[1])


def _busiest_second(times: list[float]) -> int:
    busiest, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


async def test_a_full_window_goes_at_once_and_no_one_second_window_exceeds_the_limit() -> None:
    gate, connection = _gate(40)
    first = await _send(gate, 40)
    assert len(first) == 40 and _waited(connection) == 0.0  # the limit is there to be used
    later = await _send(gate, 60)  # 2.5 windows in all: the gate now waits for places
    assert _waited(connection) > 0.0
    assert _busiest_second([arrived for _, arrived in first + later]) <= 40


async def test_no_arrival_second_exceeds_the_limit_when_round_trips_vary() -> None:
    """A slow request then fast ones a second later: counted by send time alone, both would
    land in one second at the destination. The gate holds each place until the answer."""
    gate, _ = _gate(20)
    sent = await _send(gate, 60, latency=lambda n: 0.3 if n % 5 == 0 else 0.002)
    assert _busiest_second([arrived for _, arrived in sent]) <= 20


async def test_a_higher_limit_waits_a_window_a_lower_one_applies_at_once() -> None:
    gate, _ = _gate(10)
    gate.set_limit(2)
    assert gate.limit == gate.rate == 2
    raised_at = time.monotonic()
    gate.set_limit(30)
    assert gate.limit == 2  # the process that gave this share up may still fill the window
    sent = await _send(gate, 8)  # 2 in the first window, the rest once the raise applies
    early = [admitted for admitted, _ in sent if admitted < raised_at + 1.0]
    assert len(early) <= 2, early
    assert gate.limit == 30


async def test_a_429_pauses_every_sender_until_retry_after_and_halves_the_rate() -> None:
    gate, connection = _gate(100)
    paused_at = time.monotonic()
    gate.slow_down(retry_after=0.5)
    admitted = await _send(gate, 3, senders=3)
    assert all(at - paused_at >= 0.5 for at, _ in admitted)  # nobody before the pause ends
    # ...and the gate waited out the pause only, not a whole window more on top of it.
    assert _waited(connection) <= 0.55
    assert gate.rate == 50


def test_after_a_429_the_rate_recovers_by_ten_percent_per_clean_second() -> None:
    gate, _ = _gate(100)
    gate.slow_down(retry_after=2.0)
    resumed = gate._paused_until  # recovery counts from the end of the pause
    gate._recover(resumed + 0.99)
    assert gate.rate == 50
    expected = 50.0
    for second in range(1, 9):
        gate._recover(resumed + 1.001 * second)  # one whole clean second after the last step
        expected = min(100.0, expected * RECOVERY_PER_SECOND)
        assert gate.rate == expected, second
    assert gate.rate == 100  # 50 x 1.1^8 > 100: back at the limit after eight clean seconds
    gate.slow_down(retry_after=None)
    assert gate.rate == 50  # a second 429 halves it again
