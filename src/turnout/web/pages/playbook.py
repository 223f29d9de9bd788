"""A connection's Playbook tab: edit the rules as TOML with live validation, try them on the
connection's recent calls, save them as a new revision, and roll back to an earlier one.

Everything goes through the same playbook service as the management API, so the dashboard
refuses the same playbooks with the same located errors, and never runs code: a `function`
rule is refused, and a draft is tried only once it compiles without one.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.manage.errors import ManagementError, not_found
from turnout.manage.playbooks import PREVIEW_MAX
from turnout.web.playbook_text import as_text, from_text
from turnout.web.sessions import Session
from turnout.web.site import Site

logger = logging.getLogger("turnout.web")

PREVIEW_DEFAULT = 100  # recent calls "Try on recent calls" runs over unless told otherwise
REVISION_MAX = 2**62  # beyond any revision number the store can hold


def _last(value: object) -> int:
    """How many recent calls to try: the form's number, kept within 1..PREVIEW_MAX."""
    text = str(value or "").strip()
    if not text:
        return PREVIEW_DEFAULT
    try:
        number = int(text)
    except ValueError:
        raise ManagementError(
            422, "invalid", f"last: a whole number of calls from 1 to {PREVIEW_MAX}", "last"
        ) from None
    if not 1 <= number <= PREVIEW_MAX:
        raise ManagementError(
            422, "invalid", f"last: from 1 to {PREVIEW_MAX} calls, got {number}", "last"
        )
    return number


def _valid(rules: list[dict[str, Any]]) -> str:
    count = len(rules)
    return f"valid: {count} rule{'' if count == 1 else 's'}" if count else "valid: no rules"


def routes(site: Site) -> list[Route]:
    playbooks = site.playbooks

    async def render(
        request: Request,
        session: Session,
        name: str,
        *,
        text: str | None = None,
        error: ManagementError | None = None,
    ) -> Response:
        connection = await site.connections.get(name)
        current = await playbooks.current(name)
        if text is None:
            text = as_text(current["rules"], current["consent"], current["consent_missing"])
        return site.render(
            request,
            "playbook.html",
            session,
            status_code=error.status if error else 200,
            connection=connection,
            status=site.connections.status(connection),
            current=current,
            revisions=await playbooks.revisions(name),
            text=text,
            error=error,
            last=PREVIEW_DEFAULT,
            preview_max=PREVIEW_MAX,
        )

    def missing(request: Request, session: Session, exc: ManagementError) -> Response:
        return site.render(request, "missing.html", session, status_code=404, error=exc)

    async def show(request: Request, session: Session) -> Response:
        try:
            return await render(request, session, request.path_params["name"])
        except ManagementError as exc:
            return missing(request, session, exc)

    async def check(request: Request, session: Session) -> Response:
        """htmx, as the text is typed: "valid", or the located error."""
        form = await request.form()
        try:
            draft = from_text(str(form.get("playbook", "")))
            playbooks.check(*draft.parts())
            ok, message = True, _valid(draft.rules)
        except ManagementError as exc:
            ok, message = False, exc.message
        return site.render(request, "_check.html", session, ok=ok, message=message, warnings=[])

    async def preview(request: Request, session: Session) -> Response:
        """htmx: the draft over the connection's recent calls, sending nothing."""
        form = await request.form()
        name = request.path_params["name"]
        try:
            draft = from_text(str(form.get("playbook", "")))
            result = await playbooks.preview(name, _last(form.get("last")), draft.parts())
        except ManagementError as exc:
            return site.render(
                request, "_check.html", session, ok=False, message=exc.message, warnings=[]
            )
        return site.render(request, "_playbook_preview.html", session, **result)

    async def save(request: Request, session: Session) -> Response:
        form = await request.form()
        name = request.path_params["name"]
        text = str(form.get("playbook", ""))
        try:
            before = (await playbooks.current(name))["revision"]
            draft = from_text(text)
            saved = await playbooks.save(name, *draft.parts(), "dashboard")
        except ManagementError as exc:
            if exc.status == 404:
                return missing(request, session, exc)
            return await render(request, session, name, text=text, error=exc)
        if saved["revision"] == before:
            session.say("ok", "Nothing changed: the playbook in force stays as it is.")
        else:
            logger.info("connection %s: playbook revision %s in force", name, saved["revision"])
            session.say("ok", f"Saved as revision {saved['revision']}: in force now.")
        return site.redirect(request, f"/connections/{name}/playbook")

    async def rollback(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        number = request.path_params["number"]
        if number > REVISION_MAX:
            return missing(request, session, not_found(f"revision of {name!r}'s playbook", number))
        try:
            restored = await playbooks.rollback(name, number, "dashboard")
        except ManagementError as exc:
            if exc.status == 404:
                return missing(request, session, exc)
            session.say("error", exc.message)
        else:
            logger.info("connection %s: playbook rolled back to revision %d", name, number)
            session.say(
                "ok", f"Rolled back: revision {restored['revision']} (revision {number}) in force."
            )
        return site.redirect(request, f"/connections/{name}/playbook")

    base = "/connections/{name}/playbook"
    return [
        Route(base, site.page(show)),
        Route(base, site.page(save), methods=["POST"]),
        Route(base + "/check", site.page(check), methods=["POST"]),
        Route(base + "/preview", site.page(preview), methods=["POST"]),
        Route(base + "/revisions/{number:int}/rollback", site.page(rollback), methods=["POST"]),
    ]
