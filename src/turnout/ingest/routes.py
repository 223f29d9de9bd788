"""The tracking API's routes: Segment's HTTP API, analytics.js short forms, and its settings.

This is a plain Starlette app (mounted at `/v1`), not FastAPI: it is the hot path, and every
request here needs only the body bytes and two headers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from turnout import metrics
from turnout.ingest.accept import SUCCESS, Ingestor
from turnout.ingest.auth import key_from_header
from turnout.ingest.body import read_body
from turnout.ingest.errors import JSON, IngestError
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

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("turnout.ingest")


def _answer(handler: Handler) -> Handler:
    """Every request gets an answer with `code` and `message`, whatever happens inside.

    An unexpected fault is a 500, which every SDK retries; nothing was acknowledged, so nothing
    is lost. Each answer is counted by status.
    """

    async def run(request: Request) -> Response:
        try:
            response = await handler(request)
        except IngestError as exc:
            response = exc.response()
        except ClientDisconnect:
            response = IngestError(400, "client_disconnected", "body not received").response()
        except Exception:
            log.exception("tracking API: unexpected fault on %s", request.url.path)
            response = IngestError(
                500, "internal_error", "unexpected fault, nothing was committed: retry"
            ).response()
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
    openapi = msgspec.json.encode(tracking_openapi())

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

    @_answer
    async def client_metrics(request: Request) -> Response:
        # analytics-next reports its own health here; accepted so it never retries, then dropped.
        await read_body(request, METRICS_LIMIT)
        return Response(SUCCESS, media_type=JSON)

    def settings(integration: str) -> Handler:
        async def handle(request: Request) -> Response:
            key = request.path_params["write_key"]
            if key not in sources():
                raise IngestError(404, "unknown_write_key", "write key not recognised")
            body = analytics_settings(key, public_url or _origin(request), integration)
            return Response(
                msgspec.json.encode(body),
                media_type=JSON,
                headers={"Cache-Control": "public, max-age=300"},
            )

        return _answer(handle)

    async def description(_: Request) -> Response:
        return Response(openapi, media_type=JSON)

    routes = [
        Route(f"/{path}", single(kind), methods=["POST"]) for path, kind in SINGLE_ROUTES.items()
    ]
    routes += [Route(f"/{path}", batch, methods=["POST"]) for path in BATCH_ROUTES]
    routes += [
        Route("/m", client_metrics, methods=["POST"]),
        Route("/projects/{write_key}/settings", settings(SEGMENT_KEY), methods=["GET"]),
        Route(
            "/customerio/v1/projects/{write_key}/settings",
            settings(CUSTOMERIO_KEY),
            methods=["GET"],
        ),
        Route("/openapi.json", description, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                # analytics-next adds Authorization on per-event sends; browsers never let "*"
                # stand for Authorization, so requested headers are echoed back instead.
                allow_headers=["*"],
                max_age=86400,
            )
        ],
        exception_handlers={404: _not_found, 405: _not_allowed},
    )


async def _not_found(_: Request, __: Exception) -> Response:
    return IngestError(404, "not_found", "no such tracking API route").response()


async def _not_allowed(request: Request, exc: Exception) -> Response:
    response = IngestError(
        405, "method_not_allowed", f"{request.method} is not allowed on this route"
    ).response()
    response.headers["Allow"] = (getattr(exc, "headers", None) or {}).get("Allow", "POST")
    return response


def _origin(request: Request) -> str:
    """Where this client reached us: its Host header, and the scheme uvicorn determined (from
    X-Forwarded-Proto only behind a trusted proxy). Set `public_url` when that is not right."""
    return f"{request.url.scheme}://{request.url.netloc}"
