"""Ending a background task for certain, even when a cancellation is lost on its way."""

from __future__ import annotations

import asyncio
import contextlib

CANCEL_AGAIN_AFTER = 0.5  # seconds a cancelled task may take to end before it is cancelled again


async def cancel_until_done(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it to end, cancelling it again while it runs on.

    One cancellation is not always enough: on Python 3.11, ``asyncio.wait_for`` (under every
    request of the NATS client) returns the reply and drops a cancellation that arrives with
    it, and a loop would then carry on, and whoever stops it would wait for ever."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_AGAIN_AFTER)
    with contextlib.suppress(asyncio.CancelledError):
        await task
