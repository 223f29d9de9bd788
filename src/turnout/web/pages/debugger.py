"""The live debugger: incoming messages of a source as they arrive (server-sent events), each with
what every connection made of it; and a message's stored trace.

A stream starts with what the record holds (the newest calls in the log with their fates from the
store, and the newest refused calls), so a tab opened late or after a restart shows what already
happened. It then forwards the tap: "received" and "rejected" items of the chosen source that
pass the filters, and "delivery" items for messages it showed; a "live" event separates the two
parts. Every kind of item is formatted by its own function; an item that cannot be formatted is
logged and skipped, never ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from turnout.history import call_label, call_name
from turnout.manage.errors import ManagementError
from turnout.store.models import DeliveryRecord
from turnout.web.sessions import Session
from turnout.web.site import Site

KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
MAX_STREAM = 600.0  # seconds; the browser reconnects by itself (EventSource)
FOLLOWED = 5000  # message ids remembered per stream to match their deliveries
RECORDED = 50  # calls (and refused calls) from the record a stream starts with
PAYLOAD_SHOWN = 2000  # characters of a refused call's payload sent to the page

# Sent once the calls from the record are out: what follows arrives live.
LIVE_FROM_HERE = "event: live\ndata: {}\n\n"

logger = logging.getLogger("turnout.web.debugger")
Item = dict[str, Any]


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

    def admits(self, message: dict[str, Any]) -> bool:
        """Whether a call (as stored: camelCase fields) passes the filters."""
        if not self.admits_source(message.get("source")):
            return False
        if self.type and message.get("type") != self.type:
            return False
        if self.event and self.event not in call_name(message).lower():
            return False
        people = f"{message.get('userId') or ''} {message.get('anonymousId') or ''}".lower()
        return not self.user or self.user in people

    def admits_source(self, source: object) -> bool:
        """Refused calls are filtered by source only: they may have no valid type or user."""
        return not self.source or source == self.source


class _Follower:
    """Decides which items one stream sends, remembering the calls it has shown.

    A call shown from the record may arrive from the tap as well (it was published after the
    stream subscribed): it is shown once. So is a refused call recorded after the subscription.
    """

    def __init__(self, filters: Filters, subscribed_at: float) -> None:
        self._filters = filters
        self._subscribed_at = subscribed_at
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._recorded_rejects: Counter[tuple[str, ...]] = Counter()

    def render(self, item: Item) -> str | None:
        """The event to send for an item, or None when this stream does not show it."""
        try:
            return _event(item) if self.wants(item) else None
        except Exception:  # one odd item must cost that item, not every open tab's stream
            kind = item.get("kind") if isinstance(item, dict) else type(item).__name__
            logger.warning("debugger: skipped a %r item that cannot be shown", kind, exc_info=True)
            return None

    def wants(self, item: Item) -> bool:
        kind = item.get("kind")
        if kind == "delivery":
            return item.get("message_id") in self._ids
        if kind == "rejected":
            return self._wants_reject(item)
        if kind != "received":
            return False
        message = item["message"]
        if not isinstance(message, dict) or not self._filters.admits(message):
            return False
        message_id = message.get("messageId")
        if not isinstance(message_id, str):
            return True
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > FOLLOWED:
            self._ids.discard(self._order.popleft())
        return True

    def _wants_reject(self, item: Item) -> bool:
        if not self._filters.admits_source(item.get("source")):
            return False
        key = _reject_key(item)
        if item.get("recorded"):
            if float(item.get("at") or 0) >= self._subscribed_at:  # the tap has it too
                self._recorded_rejects[key] += 1
            return True
        if self._recorded_rejects[key]:
            self._recorded_rejects[key] -= 1
            return False
        return True


def _reject_key(item: Item) -> tuple[str, ...]:
    return tuple(str(item.get(k) or "") for k in ("source", "code", "message", "payload"))


# -- formatting: one function per kind of item --------------------------------------------------


def _received(item: Item) -> Item:
    message = item["message"]
    if not isinstance(message, dict):
        raise TypeError(f"a received item's message is a {type(message).__name__}")
    return {"message": message, "label": call_label(message), "size": item.get("size")}


def _delivery(item: Item) -> Item:
    return {
        "connection": str(item["connection"]),
        "message_id": str(item["message_id"]),
        "fate": str(item["fate"]),
        "detail": str(item.get("detail") or ""),
        "attempts": item.get("attempts"),
        "playbook_revision": item.get("playbook_revision"),
        "rules_applied": _rules(item.get("rules_applied")),
        "operations": list(item.get("operations") or []),
        "request": str(item.get("request") or ""),
        "response": str(item.get("response") or ""),
    }


def _rejected(item: Item) -> Item:
    return {
        "source": str(item.get("source") or ""),
        "code": str(item["code"]),
        "message": str(item["message"]),
        "payload": str(item.get("payload") or "")[:PAYLOAD_SHOWN],
    }


_FORMATS = {"received": _received, "delivery": _delivery, "rejected": _rejected}


def _event(item: Item) -> str:
    kind = str(item["kind"])
    data = {**_FORMATS[kind](item), "at": item.get("at") or time.time()}
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


# -- what a stream starts with ---------------------------------------------------------------


async def _recorded(site: Site, filters: Filters) -> list[Item]:
    """The newest calls the record holds (each followed by its fates) and the newest refused
    calls, oldest first: RECORDED of them in all. Empty, and logged, when the record cannot be
    read: the live part of the stream still works."""
    try:
        calls = await site.messages.recent(filters.admits, RECORDED)
        rejects = await site.messages.rejects(filters.source or None, RECORDED)
    except Exception:
        logger.exception("debugger: could not read the newest calls from the log and store")
        return []
    groups: list[tuple[float, list[Item]]] = []
    for call in calls:
        received: Item = {"kind": "received", "message": call.message, "at": call.appended_at}
        fates = [_delivery_item(record) for record in call.fates]
        groups.append((call.appended_at, [received, *fates]))
    for reject in rejects:
        item = {"kind": "rejected", "recorded": True, "at": reject["created_at"], **reject}
        groups.append((float(reject["created_at"]), [item]))
    groups.sort(key=lambda group: group[0])
    return [item for _, items in groups[-RECORDED:] for item in items]


def _rules(rules: Any) -> list[str] | None:
    """The rules that applied, or None when they are not known (a record read back from the
    store names the playbook revision only)."""
    return None if rules is None else [str(rule) for rule in rules]


def _delivery_item(record: DeliveryRecord) -> Item:
    return {
        "kind": "delivery",
        "connection": record.connection,
        "message_id": record.message_id,
        "fate": record.fate.value,
        "detail": record.detail,
        "attempts": record.attempts,
        "playbook_revision": record.playbook_revision,
        "rules_applied": None,
        "request": record.request,
        "response": record.response,
        "at": record.updated_at,
    }


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
        )

    async def stream(request: Request, session: Session) -> Response:
        filters = Filters.of(request)
        stopping = site.stream_stop(session)  # server stopping, or this session signed out

        async def events() -> AsyncIterator[str]:
            # first: nothing published while the record is read is lost
            queue = site.messages.follow()
            follower = _Follower(filters, subscribed_at=time.time())
            started = time.monotonic()
            try:
                yield "retry: 2000\n\n"
                for recorded in await _recorded(site, filters):
                    if (text := follower.render(recorded)) is not None:
                        yield text
                yield LIVE_FROM_HERE
                while not stopping.is_set() and time.monotonic() - started < MAX_STREAM:
                    item = await _next(queue, stopping)
                    if item is None:
                        yield ": keepalive\n\n"
                    elif (text := follower.render(item)) is not None:
                        yield text
            finally:
                site.messages.unfollow(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def message(request: Request, session: Session) -> Response:
        message_id = request.path_params["message_id"]
        try:
            trace = await site.messages.trace(message_id)
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
