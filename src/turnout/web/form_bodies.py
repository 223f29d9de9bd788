"""Dashboard request bodies: small URL-encoded forms, checked before anything parses them.

Every dashboard form (and every htmx request) is `application/x-www-form-urlencoded` and a few
kilobytes at most. Anything else is refused before routing, so before sign-in and CSRF checks:
a multipart body would otherwise be parsed, and its files spooled to the temporary directory, by
whichever handler reads the form first, even for a visitor who is not signed in.

- a `Content-Type` other than URL-encoded: 415;
- a body over `limit` bytes (by `Content-Length`, or counted as it arrives): 413.

The accepted body is read here, whole, and handed on unchanged.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
_SAFE = ("GET", "HEAD", "OPTIONS")


class FormBodies:
    def __init__(self, app: ASGIApp, limit: int = MAX_FORM_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind and kind != FORM_TYPE:
            refusal = PlainTextResponse(
                f"Content-Type {kind} is not accepted here: dashboard forms are {FORM_TYPE}",
                status_code=415,
            )
            await refusal(scope, receive, send)
            return
        body = await self._read(headers, receive)
        if body is None:
            refusal = PlainTextResponse(
                f"Request body over {self.limit} bytes: the limit for a dashboard form",
                status_code=413,
                headers={"Connection": "close"},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, headers: Headers, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to be over the limit."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the already-read body once, then waits on the real one (which
    reports the client disconnecting)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
