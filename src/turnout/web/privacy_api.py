"""The management API's privacy requests: `POST/GET /api/v1/privacy/requests[/{id}]`.

The body is checked by `turnout.privacy.service.check_request` rather than by the model, so that
every mistake is a 400 naming the field (the model describes it in the OpenAPI document) and
nothing of a refused request is applied. `X-Turnout-Origin: cli|dashboard` records who asked;
anything else is recorded as `api`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request

from turnout.manage.connections import Connections
from turnout.manage.errors import ManagementError, not_found
from turnout.privacy.forwarding import connection_of
from turnout.privacy.records import RequestRow
from turnout.privacy.service import PrivacyRequestError, PrivacyService, check_request
from turnout.web import api_models as m

ORIGINS = ("cli", "dashboard")
NOT_FORWARDED = (
    "made before Turnout told destinations of privacy requests: the destination itself was not"
    " asked to delete or suppress the person"
)
RequestId = Annotated[str, Path(pattern=r"^pr_[0-9a-f]{1,40}$")]


def request_view(row: RequestRow, connections: list[str]) -> dict[str, Any]:
    """The request as the API and the dashboard show it: Turnout's own steps, and what each
    connection's destination was told (`connections`; `count`: people done there)."""
    told = [
        {
            "name": name,
            "lane": "done",
            "destination": s.status,
            "count": s.count,
            "detail": s.detail,
            "at": s.at,
        }
        for s in row.steps
        if (name := connection_of(s)) is not None
    ]
    if not told:  # a request from before destinations were told
        told = [
            {
                "name": name,
                "lane": "done",
                "destination": "not_supported",
                "count": 0,
                "detail": NOT_FORWARDED,
                "at": 0.0,
            }
            for name in connections
        ]
    return {
        "id": row.id,
        "action": row.action,
        "status": row.status,
        "requested_by": row.requested_by,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "user_ids": row.user_count,
        "anonymous_ids": row.anonymous_count,
        "ids_stored_as": row.ids_form,
        "log_head": row.log_head,
        "steps": [
            {"name": s.name, "status": s.status, "count": s.count, "detail": s.detail, "at": s.at}
            for s in row.steps
            if connection_of(s) is None
        ],
        "connections": told,
    }


def install_privacy_routes(
    api: FastAPI, service: PrivacyService, connections: Connections, guard: list[Any]
) -> None:
    async def connection_names() -> list[str]:
        return [c.name for c in await connections.all()]

    body_schema = m.PrivacyRequestCreate.model_json_schema()

    @api.post(
        "/privacy/requests",
        dependencies=guard,
        tags=["privacy"],
        status_code=202,
        response_model=m.PrivacyRequestView,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
    )
    async def create_privacy_request(request: Request) -> dict[str, Any]:
        """Suppress, unsuppress or delete people (up to 5,000 ids). Suppression holds from the
        answer on; a deletion's erasure runs after it: follow it with the GET below."""
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ManagementError(400, "bad_request", "body: not valid JSON", "body") from None
        if not isinstance(body, dict):
            raise ManagementError(400, "bad_request", "body: must be a JSON object", "body")
        unknown = sorted(set(body) - {"action", "user_ids", "anonymous_ids"})
        if unknown:
            raise ManagementError(
                400, "bad_request", f"{unknown[0]}: not a field of a privacy request", unknown[0]
            )
        try:
            ids = check_request(body.get("action"), body.get("user_ids"), body.get("anonymous_ids"))
        except PrivacyRequestError as exc:
            raise ManagementError(400, "bad_request", exc.message, exc.field) from None
        origin = request.headers.get("x-turnout-origin", "")
        row = await service.submit(str(body["action"]), ids, origin if origin in ORIGINS else "api")
        return request_view(row, await connection_names())

    @api.get(
        "/privacy/requests",
        dependencies=guard,
        tags=["privacy"],
        response_model=list[m.PrivacyRequestView],
    )
    async def list_privacy_requests(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Privacy requests, newest first: the audit trail (never trimmed)."""
        names = await connection_names()
        return [request_view(row, names) for row in await service.records.requests(limit)]

    @api.get(
        "/privacy/requests/{request_id}",
        dependencies=guard,
        tags=["privacy"],
        response_model=m.PrivacyRequestView,
    )
    async def get_privacy_request(request_id: RequestId) -> dict[str, Any]:
        row = await service.records.get_request(request_id)
        if row is None:
            raise not_found("privacy request", request_id)
        return request_view(row, await connection_names())
