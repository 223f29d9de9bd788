"""The management API under `/api/v1/` (bearer token), described at `/api/v1/openapi.json`.

Connections, dead letters, replay and message traces: what the CLI and the dashboard use.
Secrets in connection settings are write-only: every answer masks them.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from turnout.destinations import registry
from turnout.store.models import Connection
from turnout.store.secrets import mask

if TYPE_CHECKING:
    from turnout.app import Turnout

_bearer = HTTPBearer(auto_error=False)


class RedeliverRequest(BaseModel):
    since: float = Field(description="Unix seconds: everything received from then on is re-sent")


class ReplayRequest(BaseModel):
    connection: str
    since: float | None = None
    until: float | None = None
    reason: str | None = Field(default=None, description="Substring of the dead-letter reason")
    message_id: str | None = None


def connection_view(connection: Connection, lane_status: dict[str, Any] | None) -> dict[str, Any]:
    secret = registry.get(connection.destination).secret_fields
    return {
        "name": connection.name,
        "destination": connection.destination,
        "sources": connection.sources,
        "enabled": connection.enabled,
        "rate_limit": connection.rate_limit,
        "origin": connection.origin,
        "settings": {k: mask(str(v)) if k in secret else v for k, v in connection.settings.items()},
        "status": lane_status,
    }


def build_api(turnout: Turnout) -> FastAPI:
    api = FastAPI(
        title="Turnout management API",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )

    @api.exception_handler(HTTPException)
    async def _error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"code": _code(exc.status_code), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    def authorised(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> None:
        token = credentials.credentials if credentials else ""
        if not token or not hmac.compare_digest(token, turnout.admin_token):
            raise HTTPException(
                401, "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"}
            )

    guard = [Depends(authorised)]

    def status_of(name: str) -> dict[str, Any] | None:
        lane = turnout.delivery.lanes.get(name)
        if lane is None:
            return None
        status = lane.status()
        return {
            "state": status.state.value,
            "position": status.position,
            "held": status.held,
            "blocked_people": status.blocked_people,
            "in_flight": status.in_flight,
            "detail": status.detail,
        }

    async def existing(name: str) -> Connection:
        connection = await turnout.store.get_connection(name)
        if connection is None:
            raise HTTPException(404, f"connection {name!r} does not exist")
        return connection

    @api.get("/connections", dependencies=guard)
    async def list_connections() -> list[dict[str, Any]]:
        return [
            connection_view(c, status_of(c.name)) for c in await turnout.store.list_connections()
        ]

    @api.get("/connections/{name}", dependencies=guard)
    async def get_connection(name: str) -> dict[str, Any]:
        return connection_view(await existing(name), status_of(name))

    @api.post("/connections/{name}/pause", dependencies=guard)
    async def pause(name: str) -> dict[str, Any]:
        connection = await existing(name)
        connection.enabled = False
        await turnout.store.put_connection(connection)
        lane = turnout.delivery.lanes.get(name)
        if lane is not None:
            lane.pause()
        return connection_view(connection, status_of(name))

    @api.post("/connections/{name}/resume", dependencies=guard)
    async def resume(name: str) -> dict[str, Any]:
        connection = await existing(name)
        connection.enabled = True
        await turnout.store.put_connection(connection)
        lane = turnout.delivery.lanes.get(name)
        if lane is not None:
            lane.resume()
        return connection_view(connection, status_of(name))

    @api.post("/connections/{name}/redeliver", dependencies=guard)
    async def redeliver(name: str, body: RedeliverRequest) -> dict[str, Any]:
        await existing(name)
        offset = await turnout.delivery.redeliver_since(name, body.since)
        return {"connection": name, "from_offset": offset}

    @api.get("/dead-letters", dependencies=guard)
    async def dead_letters(
        connection: str | None = None,
        since: float | None = None,
        until: float | None = None,
        reason: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        letters = await turnout.store.dead_letters(
            connection, since=since, until=until, reason=reason, limit=min(limit, 1000)
        )
        return [
            {
                "id": d.id,
                "connection": d.connection,
                "message_id": d.message_id,
                "person": d.person,
                "reason": d.reason,
                "request": d.request,
                "response": d.response,
                "created_at": d.created_at,
            }
            for d in letters
        ]

    @api.post("/dead-letters/replay", dependencies=guard)
    async def replay(body: ReplayRequest) -> dict[str, Any]:
        await existing(body.connection)
        letters = await turnout.store.dead_letters(
            body.connection,
            since=body.since,
            until=body.until,
            reason=body.reason,
            message_id=body.message_id,
            limit=100_000,
        )
        try:
            count = await turnout.delivery.replay(body.connection, letters)
        except KeyError:
            raise HTTPException(409, f"connection {body.connection!r} is not running") from None
        return {"connection": body.connection, "replaying": count, "at": time.time()}

    @api.get("/messages/{message_id}", dependencies=guard)
    async def trace(message_id: str) -> dict[str, Any]:
        records = await turnout.store.trace(message_id)
        return {
            "message_id": message_id,
            "deliveries": [
                {
                    "connection": r.connection,
                    "fate": r.fate.value,
                    "detail": r.detail,
                    "attempts": r.attempts,
                    "request": r.request,
                    "response": r.response,
                    "updated_at": r.updated_at,
                }
                for r in records
            ],
        }

    return api


def _code(status: int) -> str:
    return {401: "unauthorized", 404: "not_found", 409: "conflict", 422: "invalid"}.get(
        status, "error"
    )
