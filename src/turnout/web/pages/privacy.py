"""Privacy: make a request (suppress, unsuppress, delete people), follow each one's steps and
what every connection's destination was told, and see how many calls suppression kept out.

Requests made here are recorded as made by `dashboard`; they go through the same checks and the
same service as the management API's, so a mistake is refused naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout import metrics
from turnout.manage.errors import ManagementError
from turnout.privacy.service import ACTIONS, PrivacyRequestError, check_request
from turnout.web.privacy_api import request_view
from turnout.web.sessions import Session
from turnout.web.site import Site

PAGE = 100
_SEPARATORS = re.compile(r"[\n\r,]+")


def parse_ids(text: str) -> list[str]:
    """Ids pasted one per line or separated by commas; blanks around each are dropped."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def suppressed_calls(sources: list[str] | None = None) -> int:
    """Calls of suppressed people this process answered without taking in (since it started),
    from `turnout_ingest_suppressed_messages`; only those of `sources` when given."""
    total = 0.0
    for metric in metrics.INGEST_SUPPRESSED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and (
                sources is None or sample.labels.get("source") in sources
            ):
                total += sample.value
    return int(total)


def routes(site: Site) -> list[Route]:
    service = site.privacy

    async def connection_names() -> list[str]:
        return [c.name for c in await site.connections.all()]

    async def render_index(
        request: Request,
        session: Session,
        *,
        error: ManagementError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Response:
        names = await connection_names()
        rows = await service.records.requests(PAGE)
        return site.render(
            request,
            "privacy.html",
            session,
            status_code=400 if error else 200,
            requests=[request_view(row, names) for row in rows],
            actions=ACTIONS,
            error=error,
            form=form or {"ids": "", "action": "suppress", "anonymous": False},
            suppressed_calls=suppressed_calls(),
            suppressed_ids=await service.records.suppressed_count(),
            page_size=PAGE,
        )

    async def index(request: Request, session: Session) -> Response:
        return await render_index(request, session)

    async def create(request: Request, session: Session) -> Response:
        form = await request.form()
        text = str(form.get("ids", ""))
        action = str(form.get("action", ""))
        anonymous = form.get("anonymous") == "true"
        ids = parse_ids(text)
        try:
            checked = check_request(
                action, [] if anonymous else ids, ids if anonymous else []
            )
        except PrivacyRequestError as exc:
            field = "ids" if exc.field in ("user_ids", "anonymous_ids") else exc.field
            error = ManagementError(400, "bad_request", exc.message, field)
            kept = {"ids": text, "action": action, "anonymous": anonymous}
            return await render_index(request, session, error=error, form=kept)
        row = await service.submit(action, checked, "dashboard")
        session.say("ok", f"Request {row.id} accepted: {action}, {len(ids)} id(s).")
        return site.redirect(request, f"/privacy/{row.id}")

    async def detail(request: Request, session: Session) -> Response:
        request_id = request.path_params["request_id"]
        row = await service.records.get_request(request_id)
        if row is None:
            error = ManagementError(404, "not_found", f"no privacy request {request_id}")
            return site.render(request, "missing.html", session, status_code=404, error=error)
        return site.render(
            request,
            "privacy.html",
            session,
            detail=request_view(row, await connection_names()),
        )

    return [
        Route("/privacy", site.page(index)),
        Route("/privacy", site.page(create), methods=["POST"]),
        Route("/privacy/{request_id:str}", site.page(detail)),
    ]
