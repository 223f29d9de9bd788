"""The management API under `/api/v1/` (bearer token), described at `/api/v1/openapi.json`.

The same capabilities as the dashboard, as JSON, for scripts and the CLI. Every error answer is
`{"code", "message"}` (plus `field` when one field is at fault); secrets are write-only and every
answer masks them.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from turnout.config import Config
from turnout.destinations import registry
from turnout.history import PERSON_PAGE, Identity
from turnout.manage.dead_letters import LetterFilter
from turnout.manage.errors import ManagementError
from turnout.manage.services import Services
from turnout.manage.views import connection_view, dead_letter_view, person_view, source_view
from turnout.web import api_models as m
from turnout.web.playbook_api import install_playbook_routes
from turnout.web.privacy_api import install_privacy_routes
from turnout.web.settings_form import form_fields
from turnout.web.token_check import TokenCheck

logger = logging.getLogger("turnout.web")

_bearer = HTTPBearer(auto_error=False, description="The admin token")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
    429: "too_many_attempts",
}

Limit = Annotated[int, Query(ge=1, le=1000)]
OptionalTime = Annotated[float | None, Query(ge=0, le=1e11, allow_inf_nan=False)]
LetterId = Annotated[int, Path(ge=1, le=2**62)]
Window = Literal["15m", "1h", "6h", "24h", "7d"]  # overview.WINDOWS
PersonId = Annotated[str | None, Query(min_length=1, max_length=1000)]


def build_api(services: Services, config: Config, tokens: TokenCheck) -> FastAPI:
    api = FastAPI(
        title="Turnout management API",
        version="1",
        description="Sources, connections, delivery overview, dead letters and message traces. "
        "Authenticate with `Authorization: Bearer <admin token>`.",
        openapi_url=None,  # served below, behind the token unless `api_docs_public`
        docs_url=None,  # the browsable page is the dashboard's /dashboard/api-docs
        redoc_url=None,
    )
    _install_error_handlers(api)
    connections = services.connections
    sources = services.sources
    messages = services.messages

    def authorised(
        request: Request,
        # Declares the bearer scheme in the OpenAPI description; `tokens` does the checking.
        _: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> None:
        refused = tokens.bearer(request, "management API")
        if refused is not None:
            raise refused

    guard = [Depends(authorised)]

    @api.get("/openapi.json", include_in_schema=False)
    async def description(request: Request) -> dict[str, Any]:
        if not config.server.api_docs_public:
            refused = tokens.bearer(request, "management API")
            if refused is not None:
                raise refused
        return {**api.openapi(), "servers": [{"url": request.scope.get("root_path", "")}]}

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> RedirectResponse:
        site_root = request.scope.get("root_path", "").removesuffix("/api/v1")
        return RedirectResponse(site_root + "/dashboard/api-docs")

    async def view(name: str) -> dict[str, Any]:
        connection = await connections.get(name)
        return connection_view(connection, connections.status(connection))

    # -- sources -------------------------------------------------------------------------

    @api.get("/sources", dependencies=guard, tags=["sources"])
    async def list_sources() -> list[dict[str, Any]]:
        return [source_view(s) for s in await sources.all()]

    @api.post("/sources", dependencies=guard, tags=["sources"], status_code=201)
    async def create_source(body: m.SourceCreate) -> dict[str, Any]:
        source = await sources.create(body.name, body.write_key)
        logger.info("source %s created", source.name)
        return source_view(source)

    @api.get("/sources/{name}", dependencies=guard, tags=["sources"])
    async def get_source(name: str) -> dict[str, Any]:
        return source_view(await sources.get(name))

    @api.patch("/sources/{name}", dependencies=guard, tags=["sources"])
    async def rename_source(name: str, body: m.SourceRename) -> dict[str, Any]:
        source = await sources.rename(name, body.name)
        logger.info("source %s renamed to %s", name, source.name)
        return source_view(source)

    @api.post("/sources/{name}/rotate", dependencies=guard, tags=["sources"])
    async def rotate_source(name: str, body: m.SourceRotate | None = None) -> dict[str, Any]:
        source = await sources.rotate(name, body.write_key if body else None)
        logger.info("source %s: write key rotated", name)
        return source_view(source)

    @api.delete("/sources/{name}", dependencies=guard, tags=["sources"], status_code=204)
    async def delete_source(name: str) -> Response:
        await sources.delete(name)
        logger.info("source %s deleted", name)
        return Response(status_code=204)

    # -- destinations and connections ----------------------------------------------------

    @api.get("/destinations", dependencies=guard, tags=["connections"])
    async def list_destinations() -> list[dict[str, Any]]:
        """Destination types and their settings (name, type, default, secret, advanced)."""
        return [
            {
                "name": destination.name,
                "title": destination.title,
                "default_rate_limit": destination.default_rate_limit,
                "settings": [f.as_dict() for f in form_fields(destination)],
            }
            for destination in registry.all_destinations()
        ]

    @api.get("/connections", dependencies=guard, tags=["connections"])
    async def list_connections() -> list[dict[str, Any]]:
        return [connection_view(c, connections.status(c)) for c in await connections.all()]

    @api.post("/connections", dependencies=guard, tags=["connections"], status_code=201)
    async def create_connection(body: m.ConnectionCreate) -> dict[str, Any]:
        """Save a connection and start delivering to it at once (no restart)."""
        created = await connections.create(
            body.name,
            body.destination,
            body.settings,
            body.sources,
            enabled=body.enabled,
            rate_limit=body.rate_limit,
            deliver_history=body.deliver_history,
        )
        logger.info("connection %s created (%s)", created.name, created.destination)
        return await view(created.name)

    @api.get("/connections/{name}", dependencies=guard, tags=["connections"])
    async def get_connection(name: str) -> dict[str, Any]:
        return await view(name)

    @api.patch("/connections/{name}", dependencies=guard, tags=["connections"])
    async def update_connection(name: str, body: m.ConnectionUpdate) -> dict[str, Any]:
        """Change settings, sources, state or rate limit; the lane restarts where it was."""
        await connections.update(
            name,
            settings=body.settings,
            sources=body.sources,
            enabled=body.enabled,
            rate_limit=body.rate_limit,
            set_rate_limit="rate_limit" in body.model_fields_set,
        )
        logger.info("connection %s updated", name)
        return await view(name)

    @api.delete("/connections/{name}", dependencies=guard, tags=["connections"], status_code=204)
    async def delete_connection(name: str) -> Response:
        await connections.delete(name)
        logger.info("connection %s deleted", name)
        return Response(status_code=204)

    @api.post("/connections/test", dependencies=guard, tags=["connections"])
    async def test_settings(body: m.CredentialsCheck) -> dict[str, Any]:
        """Check unsaved credentials (e.g. from a form) with the destination."""
        result = await connections.check(body.destination, body.settings, body.stored_from)
        return {"ok": result.ok, "message": result.message, "warnings": result.warnings}

    @api.post("/connections/{name}/test", dependencies=guard, tags=["connections"])
    async def test_connection(name: str) -> dict[str, Any]:
        """Check the saved credentials of a connection with the destination."""
        saved = await connections.get(name)
        result = await connections.check(saved.destination, saved.settings)
        return {"ok": result.ok, "message": result.message, "warnings": result.warnings}

    @api.post("/connections/{name}/pause", dependencies=guard, tags=["connections"])
    async def pause(name: str) -> dict[str, Any]:
        await connections.set_enabled(name, False)
        return await view(name)

    @api.post("/connections/{name}/resume", dependencies=guard, tags=["connections"])
    async def resume(name: str) -> dict[str, Any]:
        await connections.set_enabled(name, True)
        return await view(name)

    @api.post("/connections/{name}/redeliver", dependencies=guard, tags=["connections"])
    async def redeliver(name: str, body: m.Redeliver) -> dict[str, Any]:
        """Send everything received since a time again (dedupe ids make repeats harmless)."""
        offset = await services.dead_letters.redeliver_since(name, body.since)
        logger.info("connection %s: redelivering from offset %d", name, offset)
        return {"connection": name, "from_offset": offset}

    @api.get("/connections/{name}/overview", dependencies=guard, tags=["delivery"])
    async def delivery_overview(
        name: str,
        window: Window = "1h",
    ) -> dict[str, Any]:
        """Received → filtered → adjusted → delivered → retrying → dead-lettered, the rate per
        bucket, and the failure reasons with sample message ids."""
        connection = await connections.get(name)
        return {
            "connection": name,
            **(await connections.overview(name, window)).as_dict(),
            "status": connections.status(connection),
        }

    # -- dead letters, traces, rejects ---------------------------------------------------

    @api.get("/dead-letters", dependencies=guard, tags=["delivery"])
    async def dead_letters(
        connection: str | None = None,
        reason: Annotated[str | None, Query(max_length=500)] = None,
        since: OptionalTime = None,
        until: OptionalTime = None,
        include_replayed: bool = False,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        letters = await services.dead_letters.dead_letters(
            LetterFilter(connection, reason, since, until),
            include_replayed=include_replayed,
            limit=limit,
        )
        return [dead_letter_view(d) for d in letters]

    @api.get("/dead-letters/{letter_id}", dependencies=guard, tags=["delivery"])
    async def dead_letter(letter_id: LetterId) -> dict[str, Any]:
        letter = await services.dead_letters.dead_letter(letter_id)
        return dead_letter_view(letter, with_payload=True)

    @api.post("/dead-letters/{letter_id}/replay", dependencies=guard, tags=["delivery"])
    async def replay_one(letter_id: LetterId) -> dict[str, Any]:
        count = await services.dead_letters.replay_one(letter_id)
        logger.info("dead letter %d: replay queued", letter_id)
        return {"replaying": count}

    @api.post("/dead-letters/replay", dependencies=guard, tags=["delivery"])
    async def replay_matching(body: m.ReplayFilter) -> dict[str, Any]:
        """Replay every unreplayed dead letter of a connection matching the filter."""
        where = LetterFilter(body.connection, body.reason, body.since, body.until, body.message_id)
        count = await services.dead_letters.replay_matching(where)
        logger.info("connection %s: %d dead letters queued for replay", body.connection, count)
        return {"connection": body.connection, "replaying": count}

    @api.get("/messages/{message_id}", dependencies=guard, tags=["delivery"])
    async def trace(message_id: str) -> dict[str, Any]:
        """What each connection made of one message: fate, attempts, request and response."""
        return await messages.trace(message_id)

    @api.get("/people", dependencies=guard, tags=["delivery"])
    async def person(
        user_id: PersonId = None,
        anonymous_id: PersonId = None,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Limit = PERSON_PAGE,
    ) -> dict[str, Any]:
        """Every call of one userId or anonymousId the log keeps, in the order received, each with
        what every connection made of it; `more_after` is the `after` of the next page."""
        if (user_id is None) == (anonymous_id is None):
            raise ManagementError(
                422, "invalid", "user_id: give either user_id or anonymous_id", "user_id"
            )
        identity: Identity = "userId" if user_id is not None else "anonymousId"
        value = user_id if user_id is not None else anonymous_id or ""
        return person_view(await messages.person(identity, value, after=after, limit=limit))

    @api.get("/rejects", dependencies=guard, tags=["delivery"])
    async def rejects(source: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
        """Calls refused at ingest, newest first, with the reason and the start of the payload."""
        return await messages.rejects(source, limit)

    install_privacy_routes(api, services.privacy, connections, guard)
    install_playbook_routes(api, services.playbooks, guard)
    return api


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(ManagementError)
    async def management_error(_: Request, exc: ManagementError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field; never echo the input (it may hold a secret).
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(where) or "body"
        message = f"{field}: {first.get('msg', 'invalid')}"
        return JSONResponse(
            {"code": "invalid", "message": message, "field": field}, status_code=422
        )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"code": _CODES.get(exc.status_code, "error"), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @api.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("management API: unexpected %s", type(exc).__name__, exc_info=exc)
        return JSONResponse(
            {"code": "internal", "message": "internal error; the server log has the details"},
            status_code=500,
        )
