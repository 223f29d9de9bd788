"""Tells long-lived responses (the debugger's event stream) that the server is stopping.

Uvicorn waits for open responses to finish before it shuts down (up to its graceful timeout),
and an event stream never finishes by itself, so an open debugger tab would hold every restart
for that long. Uvicorn learns of the stop from SIGINT/SIGTERM; chaining onto its handlers is the
one place the application can hear it too.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import weakref
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ShutdownNotice:
    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._installed = False
        self._also: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()

    def event(self) -> asyncio.Event:
        """Set once a stop signal arrived; call from the event loop."""
        if self._event is None:
            self._event = asyncio.Event()
        self._install(asyncio.get_running_loop())
        return self._event

    def also_set(self, other: asyncio.Event) -> None:
        """Set `other` too when the stop signal arrives (at once if it already has)."""
        if self.event().is_set():
            other.set()
        self._also.add(other)

    def _stop(self) -> None:
        if self._event is not None:
            self._event.set()
        for other in list(self._also):
            other.set()

    def _install(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)

            def chained(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self._stop)
                if callable(previous):
                    previous(number, frame)
                elif previous == signal.SIG_DFL:  # nobody else handles it: do what it would do
                    signal.signal(number, signal.SIG_DFL)
                    signal.raise_signal(number)

            signal.signal(sig, chained)
