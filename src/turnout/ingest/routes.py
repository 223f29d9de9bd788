"""The tracking API's routes: Segment's HTTP API, analytics.js short forms, and its settings.

This is a plain Starlette app (mounted at `/v1`), not FastAPI: it is the hot path, and every
request here needs only the body bytes and two headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout import metrics
from turnout.ingest.accept import SUCCESS, Ingestor
from turnout.ingest.auth import key_from_header
from turnout.ingest.body import read_body
from turnout.ingest.errors import JSON, IngestError
from turnout.ingest.settings import analytics_settings
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

Handler = Callable[[Request], Awaitable[Response]]


def _answer(handler: Handler) -> Handler:
    """Turn `IngestError`s into their responses and count every answer by status."""

    async def run(request: Request) -> Response:
        try:
            response = await handler(request)
        except IngestError as exc:
            response = exc.response()
        metrics.INGEST_REQUESTS.labels(str(response.status_code)).inc()
        return response

    return run


def _facts(request: Request) -> RequestFacts:
    return RequestFacts(received_at=now(), ip=request.client.host if request.client else None)


def build_tracking_app(
    ingestor: Ingestor,
    sources: Callable[[], Mapping[str, Source]],
    public_url: str,
    cors_origins: list[str],
) -> Starlette:
    limits = ingestor.limits

    def single(call_type: str) -> Handler:
        async def handle(request: Request) -> Response:
            header_key = key_from_header(request.headers.get("authorization"))
            body = await read_body(request, limits.max_request_bytes)
            outcome = await ingestor.accept_one(body, call_type, header_key, _facts(request))
            return Response(outcome.body(), media_type=JSON)

        return _answer(handle)

    @_answer
    async def batch(request: Request) -> Response:
        header_key = key_from_header(request.headers.get("authorization"))
        body = await read_body(request, limits.max_request_bytes)
        outcome = await ingestor.accept_batch(body, header_key, _facts(request))
        return Response(outcome.body(), media_type=JSON)

    async def client_metrics(request: Request) -> Response:
        # analytics-next reports its own health here; accepted so it never retries, then dropped.
        await request.body()
        return Response(SUCCESS, media_type=JSON)

    async def settings(request: Request) -> Response:
        key = request.path_params["write_key"]
        if key not in sources():
            return IngestError(404, "unknown_write_key", "write key not recognised").response()
        body = analytics_settings(key, public_url or _origin(request))
        return Response(
            msgspec.json.encode(body),
            media_type=JSON,
            headers={"Cache-Control": "public, max-age=300"},
        )

    routes = [
        Route(f"/{path}", single(kind), methods=["POST"]) for path, kind in SINGLE_ROUTES.items()
    ]
    routes += [Route(f"/{path}", batch, methods=["POST"]) for path in BATCH_ROUTES]
    routes.append(Route("/m", client_metrics, methods=["POST"]))
    routes.append(Route("/projects/{write_key}/settings", settings, methods=["GET"]))
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],
                max_age=86400,
            )
        ],
    )


def _origin(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    host = request.headers.get("x-forwarded-host", request.headers.get("host", request.url.netloc))
    return f"{proto}://{host}"
