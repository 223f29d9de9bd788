"""The rate limit holds over every one-second window, and backs off on 429."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from turnout.delivery.gate import RateGate


async def _send_for(
    gate: RateGate, seconds: float, senders: int = 8, latency: Callable[[int], float] = lambda _: 0
) -> list[float]:
    """Send through the gate; each request "arrives" at a random point of its round trip."""
    sent: list[float] = []
    stop = time.monotonic() + seconds
    count = 0

    async def sender() -> None:
        nonlocal count
        while time.monotonic() < stop:
            async with gate.slot():
                count += 1
                round_trip = latency(count)
                started = time.monotonic()
                await asyncio.sleep(round_trip)
                sent.append(started + random.uniform(0, round_trip))

    await asyncio.gather(*(sender() for _ in range(senders)))
    return sorted(sent)


def _busiest_second(times: list[float]) -> int:
    busiest, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


async def test_no_one_second_window_exceeds_the_limit() -> None:
    times = await _send_for(RateGate(40), 2.5)
    assert _busiest_second(times) <= 40
    assert len(times) >= 40 * 2  # and the limit is used, not wasted


async def test_no_arrival_second_exceeds_the_limit_when_round_trips_vary() -> None:
    """A slow request then fast ones a second later: counted by send time alone, both would
    land in one second at the destination. The gate holds each place until the answer."""
    times = await _send_for(RateGate(20), 3.0, latency=lambda n: 0.3 if n % 5 == 0 else 0.002)
    assert _busiest_second(times) <= 20
    assert len(times) >= 20 * 2


async def test_a_higher_limit_waits_a_window_a_lower_one_applies_at_once() -> None:
    gate = RateGate(10)
    gate.set_limit(2)
    assert gate.limit == gate.rate == 2
    gate.set_limit(30)
    assert gate.limit == 2  # the process that gave this share up may still fill the window
    started = time.monotonic()
    times = await _send_for(gate, 1.5)
    assert sum(1 for t in times if t < started + 0.95) <= 2
    assert gate.limit == 30


async def test_a_429_pauses_every_sender_until_retry_after_and_halves_the_rate() -> None:
    gate = RateGate(100)
    gate.slow_down(retry_after=0.5)
    started = time.monotonic()
    async with gate.slot():
        assert 0.45 <= time.monotonic() - started < 0.9  # the pause, not a whole window more
    assert gate.rate == 50
