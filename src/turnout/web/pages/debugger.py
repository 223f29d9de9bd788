"""The live debugger: incoming messages of a source as they arrive (server-sent events), each with
what every connection made of it; and a message's stored trace.

The stream forwards the tap: "received" and "rejected" items of the chosen source that pass the
filters, and "delivery" items for messages it forwarded. It starts with the tap's recent items,
so a reload shows what just happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from turnout.web.errors import ManagementError
from turnout.web.sessions import Session
from turnout.web.site import Site

KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
MAX_STREAM = 600.0  # seconds; the browser reconnects by itself (EventSource)
FOLLOWED = 5000  # message ids remembered per stream to match their deliveries


@dataclass(slots=True)
class Filters:
    source: str = ""
    type: str = ""
    event: str = ""
    user: str = ""

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        return cls(
            source=q.get("source", ""),
            type=q.get("type", ""),
            event=q.get("event", "").strip().lower(),
            user=q.get("user", "").strip().lower(),
        )

    def admits(self, item: dict[str, Any]) -> bool:
        if item.get("kind") == "rejected":
            return not self.source or item.get("source") == self.source
        message = item.get("message") or {}
        if self.source and message.get("source") != self.source:
            return False
        if self.type and message.get("type") != self.type:
            return False
        name = str(message.get("event") or message.get("name") or "").lower()
        if self.event and self.event not in name:
            return False
        people = f"{message.get('userId') or ''} {message.get('anonymousId') or ''}".lower()
        return not self.user or self.user in people


class _Follower:
    """Decides which tap items one stream sends, remembering the messages it has shown."""

    def __init__(self, filters: Filters) -> None:
        self._filters = filters
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def wants(self, item: dict[str, Any]) -> bool:
        if item.get("kind") == "delivery":
            return item.get("message_id") in self._ids
        if not self._filters.admits(item):
            return False
        message_id = (item.get("message") or {}).get("messageId")
        if message_id and message_id not in self._ids:
            self._ids.add(message_id)
            self._order.append(message_id)
            if len(self._order) > FOLLOWED:
                self._ids.discard(self._order.popleft())
        return True


def _event(item: dict[str, Any]) -> str:
    data = json.dumps({**item, "at": item.get("at", time.time())}, default=str)
    return f"event: {item.get('kind', 'message')}\ndata: {data}\n\n"


def routes(site: Site) -> list[Route]:
    async def page(request: Request, session: Session) -> Response:
        sources = await site.sources.all()
        filters = Filters.of(request)
        return site.render(
            request,
            "debugger.html",
            session,
            sources=sources,
            filters=filters,
            connections=await site.connections.all(),
            rejects=await site.deliveries.rejects(filters.source or None, 10),
        )

    async def stream(request: Request, session: Session) -> Response:
        follower = _Follower(Filters.of(request))
        tap = site.turnout.tap
        stopping = site.shutdown.event()

        async def events() -> AsyncIterator[str]:
            queue = tap.subscribe()
            started = time.monotonic()
            try:
                yield "retry: 2000\n\n"
                for recent in list(tap.recent):
                    if follower.wants(recent):
                        yield _event(recent)
                while not stopping.is_set() and time.monotonic() - started < MAX_STREAM:
                    item = await _next(queue, stopping)
                    if item is None:
                        yield ": keepalive\n\n"
                    elif follower.wants(item):
                        yield _event(item)
            finally:
                tap.unsubscribe(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def message(request: Request, session: Session) -> Response:
        message_id = request.path_params["message_id"]
        try:
            trace = await site.deliveries.trace(message_id)
        except ManagementError:
            trace = {"message_id": message_id, "deliveries": [], "dead_letters": []}
        return site.render(request, "message.html", session, trace=trace)

    return [
        Route("/debugger", site.page(page)),
        Route("/debugger/stream", site.page(stream)),
        Route("/messages/{message_id}", site.page(message)),
    ]


async def _next(
    queue: asyncio.Queue[dict[str, Any]], stopping: asyncio.Event
) -> dict[str, Any] | None:
    """The next tap item, or None after KEEPALIVE seconds or when the server stops."""
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait(
        {getter, stopper}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
    )
    stopper.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await getter
    return None
