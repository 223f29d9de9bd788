"""Dead letters: list with filters, inspect one (request, response, payload), replay one or all
matching the filter."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.manage.dead_letters import LetterFilter
from turnout.manage.errors import ManagementError
from turnout.manage.views import dead_letter_view
from turnout.web.sessions import Session
from turnout.web.site import Site

PAGE = 200


def routes(site: Site) -> list[Route]:
    async def index(request: Request, session: Session) -> Response:
        q = request.query_params
        where = LetterFilter(connection=q.get("connection") or None, reason=q.get("reason") or None)
        letters = await site.dead_letters.dead_letters(where, limit=PAGE)
        return site.render(
            request,
            "dead_letters.html",
            session,
            letters=letters,
            where=where,
            connections=await site.connections.all(),
            page_size=PAGE,
        )

    async def inspect(request: Request, session: Session) -> Response:
        try:
            letter = await site.dead_letters.dead_letter(int(request.path_params["letter_id"]))
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        return site.render(
            request, "dead_letter.html", session, letter=dead_letter_view(letter, with_payload=True)
        )

    async def replay_one(request: Request, session: Session) -> Response:
        letter_id = int(request.path_params["letter_id"])
        try:
            await site.dead_letters.replay_one(letter_id)
            session.say("ok", "Replay queued: the message is being sent again.")
        except ManagementError as exc:
            session.say("error", exc.message)
        return site.redirect(request, f"/dead-letters/{letter_id}")

    async def replay_matching(request: Request, session: Session) -> Response:
        form = await request.form()
        where = LetterFilter(
            connection=str(form.get("connection", "")) or None,
            reason=str(form.get("reason", "")) or None,
        )
        try:
            count = await site.dead_letters.replay_matching(where)
            session.say("ok", f"Replay queued for {count} dead letter(s).")
        except ManagementError as exc:
            session.say("error", exc.message)
        query = urlencode({"connection": where.connection or "", "reason": where.reason or ""})
        return site.redirect(request, "/dead-letters?" + query)

    return [
        Route("/dead-letters", site.page(index)),
        Route("/dead-letters/replay", site.page(replay_matching), methods=["POST"]),
        Route("/dead-letters/{letter_id:int}", site.page(inspect)),
        Route("/dead-letters/{letter_id:int}/replay", site.page(replay_one), methods=["POST"]),
    ]
