"""The rate limit holds over every one-second window, and backs off on 429."""

from __future__ import annotations

import asyncio
import time

from turnout.delivery.gate import RateGate


async def _send_for(gate: RateGate, seconds: float, senders: int = 8) -> list[float]:
    sent: list[float] = []
    stop = time.monotonic() + seconds

    async def sender() -> None:
        while time.monotonic() < stop:
            await gate.acquire()
            sent.append(time.monotonic())

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


async def test_a_429_pauses_every_sender_until_retry_after_and_halves_the_rate() -> None:
    gate = RateGate(100)
    gate.slow_down(retry_after=0.5)
    started = time.monotonic()
    await gate.acquire()
    assert time.monotonic() - started >= 0.45
    assert gate.rate == 50
