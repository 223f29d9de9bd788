"""The ASGI application: the Track API itself plus the ``/_emulator/`` control endpoints.

The Track API side is a plain ASGI callable rather than Starlette routes for two reasons: it must
route on the *raw* path (identifiers may contain an encoded ``/``), and it sits on the hot path of
benchmarks, where a framework's per-request objects cost more than the work itself. The control
endpoints are ordinary Starlette routes (see :mod:`.control`).

Order of checks for a Track request: record it; an injected fault wins; then route (404), auth
(401), rate limit (429), JSON and validation (400 / 207); then the operations are applied.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from . import operations as ops
from . import v2
from .control import build_control_app
from .faults import Fault
from .identifiers import path_segments
from .recorder import RecordedRequest, event_ids
from .responses import (
    BASE_HEADERS,
    NOT_FOUND,
    OK,
    UNAUTHORIZED,
    Reply,
    meta_error,
    meta_errors,
    pretty,
    v2_errors,
)
from .routes import Route, match
from .validation import Violation

if TYPE_CHECKING:
    from .emulator import CustomerIOEmulator

Scope = dict[str, Any]
Receive = Any
Send = Any

_NOT_JSON = object()


class TrackAPI:
    """ASGI app serving the emulated Track API for one :class:`CustomerIOEmulator`."""

    def __init__(self, emulator: CustomerIOEmulator) -> None:
        self.emu = emulator
        self.control = build_control_app(emulator)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if raw_path.startswith(b"/_emulator"):
            await self.control(scope, receive, send)
            return
        await self._track_request(scope, raw_path, receive, send)

    async def _track_request(self, scope: Scope, raw_path: bytes, receive: Receive,
                             send: Send) -> None:
        emu = self.emu
        now = time.time()
        body = await _read_body(receive)
        method: str = scope["method"]
        segments = path_segments(raw_path)
        route = match(method, segments)
        parsed = _parse_json(body)
        path = raw_path.decode("latin-1")
        record = RecordedRequest(
            seq=0, method=method, path=path, query=scope.get("query_string", b"").decode("latin-1"),
            endpoint=route.endpoint if route else f"{method} (unknown)",
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=(parsed if parsed is not _NOT_JSON else body.decode("utf-8", "replace"))
            if emu.config.record_bodies else None,
            body_size=len(body), received_at=now,
        )
        emu.requests.start(record, event_ids(record.endpoint, parsed))

        fault = emu.faults.take(path)
        if fault is not None:
            record.fault = fault.describe()
            status = await self._fault(fault, receive, send)
            emu.requests.finish(record, status)
            return

        reply, operations = self._handle(route, segments, record.headers, parsed, body)
        if operations:
            # Applied before answering: a client that reads the state after its 200 must see its
            # call (with `processing_delay`, it is scheduled, as Customer.io processes later).
            emu.submit(operations, now)
        await _send(send, reply)
        emu.requests.finish(record, reply.status)

    def _handle(self, route: Route | None, segments: list[str], headers: dict[str, str],
                parsed: Any, body: bytes) -> tuple[Reply, list[ops.Operation]]:
        emu = self.emu
        if route is None:
            return NOT_FOUND, []
        if route.auth and not emu.auth.check(headers.get("authorization")):
            return UNAUTHORIZED, []
        if route.auth and emu.limiter is not None:
            wait = emu.limiter.take()
            if wait is not None:
                return meta_error(429, "Too many requests",
                                  [(b"retry-after", str(wait).encode())]), []
        if route.kind == "region":
            config = emu.config
            return Reply(200, pretty({"url": config.region_url(), "region": config.region,
                                      "environment_id": config.environment_id})), []
        if route.kind == "auth":
            return Reply(200, pretty({"meta": {"message": "nice credentials."}})), []
        if route.kind == "v2_entity":
            return self._v2_entity(parsed, body)
        if route.kind == "v2_batch":
            return self._v2_batch(body)
        if parsed is _NOT_JSON:
            return meta_errors(["request body is not valid JSON"]), []
        if route.endpoint.startswith("POST /unsubscribe") and not headers.get(
                "content-type", "").startswith("application/json"):
            return meta_error(400, "Content-Type must be application/json"), []
        assert route.handler is not None
        result = route.handler(segments, parsed)
        if isinstance(result, Reply):
            return result, []
        return OK, [result]

    def _v2_entity(self, parsed: Any, body: bytes) -> tuple[Reply, list[ops.Operation]]:
        limit = self.emu.config.v2_entity_limit
        if len(body) > limit:
            return v2_errors(400, [v2.error_dict(Violation(
                "", "invalid", f"request body cannot be larger than {limit} bytes"))]), []
        if parsed is _NOT_JSON or parsed is None:
            return v2_errors(400, [v2.error_dict(Violation(
                "", "invalid", "request body is not valid JSON"))]), []
        result = v2.parse_item(parsed)
        if isinstance(result, list):
            return v2_errors(400, [v2.error_dict(v) for v in result]), []
        return OK, [result]

    def _v2_batch(self, body: bytes) -> tuple[Reply, list[ops.Operation]]:
        config = self.emu.config
        if len(body) > config.v2_batch_limit:
            return v2_errors(400, [v2.error_dict(Violation(
                "batch", "invalid",
                f"request body cannot be larger than {config.v2_batch_limit} bytes"))]), []
        try:
            batch = msgspec.json.decode(body, type=v2.BatchBody).batch
        except msgspec.DecodeError:
            return v2_errors(400, [v2.error_dict(Violation(
                "batch", "required", "request body must be {\"batch\": [...]}"))]), []
        errors: list[dict[str, Any]] = []
        operations: list[ops.Operation] = []
        for index, raw in enumerate(batch):
            if len(raw) > config.v2_item_limit:
                errors.append(v2.error_dict(Violation(
                    "", "invalid", f"batch item cannot be larger than {config.v2_item_limit} bytes"
                ), index))
                continue
            result = v2.parse_item(msgspec.json.decode(raw))
            if isinstance(result, list):
                errors.extend(v2.error_dict(v, index) for v in result)
            else:
                operations.append(result)
        if errors:
            return v2_errors(config.batch_errors_status, errors), operations
        return OK, operations

    async def _fault(self, fault: Fault, receive: Receive, send: Send) -> int:
        """Carry out a fault; returns the status recorded (-1 for a dropped connection)."""
        if fault.kind == "drop":
            await _drop(receive, send)
            return -1
        if fault.kind == "hang":
            seconds = fault.hang_seconds if fault.hang_seconds is not None else (
                self.emu.config.hang_seconds)
            try:
                await asyncio.wait_for(_wait_disconnect(receive), timeout=seconds)
                return -1  # the client gave up first, as it should
            except TimeoutError:
                await _send(send, meta_error(504, "Gateway timeout"))
                return 504
        headers = []
        if fault.retry_after is not None:
            headers.append((b"retry-after", _retry_after(fault.retry_after)))
        if fault.body is not None:
            reply = Reply(fault.status, fault.body.encode(), headers)
        else:
            message = "Too many requests" if fault.status == 429 else "Internal server error"
            reply = meta_error(fault.status, message, headers)
        await _send(send, reply)
        return fault.status


def _retry_after(seconds: float) -> bytes:
    whole = int(seconds)
    return str(whole if whole == seconds else seconds).encode()


def _parse_json(body: bytes) -> Any:
    if not body or body.isspace():
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return _NOT_JSON


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Send, reply: Reply) -> None:
    headers = [*BASE_HEADERS, (b"content-length", str(len(reply.body)).encode()), *reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _drop(receive: Receive, send: Send) -> None:
    """Close the connection without answering.

    ASGI has no "close without response" message, and uvicorn answers 500 when an app returns
    without starting a response. uvicorn's ``receive`` is a method of the request cycle, which
    holds the transport; aborting it gives the client the reset it would get from a dead peer.
    Other servers get the next best thing: a response cut off mid-body.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        for _ in range(3):  # let connection_lost run so the server knows the client is gone
            await asyncio.sleep(0)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise ConnectionAbortedError("emulator fault: connection dropped")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
