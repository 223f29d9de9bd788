"""The tracking API's routes: Segment's HTTP API, analytics.js short forms, and its settings.

This is a bare ASGI app (mounted at `/v1`), not a Starlette or FastAPI one: it is the hot path,
every request needs only its body and three headers, and a profile of single-event requests
showed the framework's layers (router, middleware stack, Request/Response objects) costing
more CPU than validating and committing the event. What a framework would give is here in
plain code: a dict from path to handler, CORS (`cors.py`), and one place that turns every
outcome into an answer with `code` and `message`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from starlette.types import Receive, Scope, Send

from turnout import metrics
from turnout.ingest.accept import SUCCESS, Ingestor, Outcome
from turnout.ingest.auth import key_from_header
from turnout.ingest.body import ClientGone, read_body
from turnout.ingest.cors import CORSPolicy, Headers
from turnout.ingest.errors import IngestError
from turnout.ingest.openapi import tracking_openapi
from turnout.ingest.settings import CUSTOMERIO_KEY, SEGMENT_KEY, analytics_settings
from turnout.spec.normalise import RequestFacts, now
from turnout.store.models import Source

SINGLE_ROUTES = {
    "identify": "identify",
    "track": "track",
    "page": "page",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
    # analytics-next posts each call to the first letter of its type.
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
BATCH_ROUTES = ("batch", "b")
# analytics-next's client metrics are small; anything bigger is not them.
METRICS_LIMIT = 64 * 1024
# The settings change only when sources do; browsers and CDNs may keep them a few minutes.
SETTINGS_CACHE = b"public, max-age=300"
# Without `public_url` the document names the host the request named, which a client chooses
# freely: a shared cache must never hand one client's version to another (cache poisoning), so
# only the browser that asked may keep it.
SETTINGS_CACHE_FROM_HOST = [(b"cache-control", b"private, max-age=300"), (b"vary", b"Host")]
# A host name, IPv4 address or bracketed IPv6 address, with an optional port: nothing that could
# carry a path, a scheme or a quote into the document.
_HOST = re.compile(rb"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")

logger = logging.getLogger("turnout.ingest")
_JSON = [(b"content-type", b"application/json")]


class _Request:
    """What a handler needs of a request: its headers, client and where it was sent."""

    __slots__ = ("client", "headers", "path", "receive", "scheme")

    def __init__(self, scope: Scope, receive: Receive, path: str) -> None:
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        client = scope.get("client")
        self.client: str | None = client[0] if client else None
        self.scheme: str = scope.get("scheme", "http")
        self.receive = receive
        self.path = path

    def facts(self) -> RequestFacts:
        return RequestFacts(received_at=now(), ip=self.client)

    def origin(self) -> str:
        """Where this client reached us: its Host header, and the scheme uvicorn determined
        (from X-Forwarded-Proto only behind a trusted proxy). `public_url` overrides it."""
        host = self.headers.get(b"host", b"localhost")
        if _HOST.fullmatch(host) is None:
            raise IngestError(
                400,
                "invalid_host",
                "Host header: not a host name with an optional port;"
                " set [server] public_url to the address clients use",
            )
        return f"{self.scheme}://{host.decode('ascii')}"


Handler = Callable[[_Request], Awaitable[tuple[int, bytes, Headers]]]


class TrackingAPI:
    """The `/v1` ASGI app. Every answer, error or not, is JSON with CORS headers and counted."""

    def __init__(
        self,
        ingestor: Ingestor,
        sources: Callable[[], Mapping[str, Source]],
        public_url: str,
        cors: CORSPolicy,
    ) -> None:
        self._ingestor = ingestor
        self._sources = sources
        self._public_url = public_url
        self._cors = cors
        self._openapi = msgspec.json.encode(tracking_openapi())
        self._limit = ingestor.limits.max_request_bytes
        self._post: dict[str, Handler] = {
            f"/{path}": self._single(kind) for path, kind in SINGLE_ROUTES.items()
        }
        self._post.update({f"/{path}": self._batch for path in BATCH_ROUTES})
        self._post["/m"] = self._client_metrics
        self._answers: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = _route_path(scope)
        request = _Request(scope, receive, path)
        method = scope["method"]
        origin = request.headers.get(b"origin")
        if method == "OPTIONS" and b"access-control-request-method" in request.headers:
            await self._preflight(request, origin, send)
            return
        try:
            status, body, headers = await self._dispatch(method, request)
        except IngestError as exc:
            status, body = exc.status, exc.body()
            headers = exc.headers()
        except ClientGone:
            self._count(499)
            return
        except Exception:
            logger.exception("tracking API: unexpected fault on %s %s", method, path)
            fault = IngestError(500, "internal_error", "unexpected fault, nothing committed: retry")
            status, body, headers = 500, fault.body(), []
        if origin is not None:
            headers = headers + self._cors.response_headers(origin)
        self._count(status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON, (b"content-length", b"%d" % len(body)), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(self, method: str, request: _Request) -> tuple[int, bytes, Headers]:
        if method == "POST":
            handler = self._post.get(request.path)
            if handler is not None:
                return await handler(request)
        elif method in ("GET", "HEAD"):
            if request.path == "/openapi.json":
                return 200, self._openapi, []
            settings = _settings_route(request.path)
            if settings is not None:
                return self._settings(request, *settings)
        if request.path in self._post:
            raise IngestError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {request.path}: use POST",
                headers=[(b"allow", b"POST, OPTIONS")],
            )
        raise IngestError(404, "not_found", f"no tracking API route at {request.path}")

    def _single(self, call_type: str) -> Handler:
        async def handle(request: _Request) -> tuple[int, bytes, Headers]:
            key = key_from_header(request.headers.get(b"authorization"))
            body = await read_body(request.receive, request.headers, self._limit)
            outcome = await self._ingestor.accept_one(body, call_type, key, request.facts())
            return _ok(outcome)

        return handle

    async def _batch(self, request: _Request) -> tuple[int, bytes, Headers]:
        key = key_from_header(request.headers.get(b"authorization"))
        body = await read_body(request.receive, request.headers, self._limit)
        return _ok(await self._ingestor.accept_batch(body, key, request.facts()))

    async def _client_metrics(self, request: _Request) -> tuple[int, bytes, Headers]:
        # analytics-next reports its own health here; accepted so it never retries, then dropped.
        await read_body(request.receive, request.headers, METRICS_LIMIT)
        return 200, SUCCESS, []

    def _settings(
        self, request: _Request, write_key: str, integration: str
    ) -> tuple[int, bytes, Headers]:
        if write_key not in self._sources():
            raise IngestError(404, "unknown_write_key", "write key not recognised")
        if self._public_url:
            document = analytics_settings(write_key, self._public_url, integration)
            return 200, msgspec.json.encode(document), [(b"cache-control", SETTINGS_CACHE)]
        document = analytics_settings(write_key, request.origin(), integration)
        return 200, msgspec.json.encode(document), SETTINGS_CACHE_FROM_HOST

    async def _preflight(self, request: _Request, origin: bytes | None, send: Send) -> None:
        requested = request.headers.get(b"access-control-request-headers")
        headers = self._cors.preflight_headers(origin, requested)
        status = 200 if headers is not None else 400
        body = b"OK" if headers is not None else b"origin not allowed"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(body)),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _count(self, status: int) -> None:
        """Requests by status; the labelled child is looked up once per status, not per call."""
        child = self._answers.get(status)
        if child is None:
            child = self._answers[status] = metrics.INGEST_REQUESTS.labels(str(status))
        child.inc()


def build_tracking_app(
    ingestor: Ingestor,
    sources: Callable[[], Mapping[str, Source]],
    public_url: str,
    cors_origins: list[str],
) -> TrackingAPI:
    return TrackingAPI(ingestor, sources, public_url, CORSPolicy.allowing(cors_origins))


def _ok(outcome: Outcome) -> tuple[int, bytes, Headers]:
    return 200, outcome.body(), []


def _route_path(scope: Scope) -> str:
    """The path below the mount point (`/v1`), as Starlette's Mount leaves it in the scope."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _settings_route(path: str) -> tuple[str, str] | None:
    """`/projects/{key}/settings` (analytics-next) or the same under `/customerio/v1`."""
    integration = SEGMENT_KEY
    if path.startswith("/customerio/v1/"):
        path, integration = path[len("/customerio/v1") :], CUSTOMERIO_KEY
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "projects" and parts[3] == "settings" and parts[2]:
        return parts[2], integration
    return None
