"""Sign-in with the admin credential, and sign-out.

The sign-in form has its own pre-session (and CSRF token), so a third-party page cannot sign a
browser in to an attacker's session; a successful sign-in gets a new session id.
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from turnout.web.site import Site

FAILED_SIGN_IN_DELAY = 0.5  # seconds: makes guessing the token by brute force slow


def routes(site: Site) -> list[Route]:
    async def login(request: Request) -> Response:
        session = site.session_of(request)
        if session is None:
            session = site.sessions.new()
        next_path = _next(request, request.query_params.get("next", ""))
        if session.signed_in and request.method == "GET":
            return RedirectResponse(next_path, status_code=303)
        error = ""
        if request.method == "POST":
            form = await request.form()
            token = str(form.get("token", "")).strip()
            if not session.csrf_ok(str(form.get("csrf_token", ""))):
                error = "The sign-in form expired. Please try again."
            elif token and hmac.compare_digest(token.encode(), site.turnout.admin_token.encode()):
                signed_in = site.sessions.sign_in(session)
                moved = RedirectResponse(_next(request, str(form.get("next", ""))), 303)
                site.set_cookie(request, moved, signed_in)
                return moved
            else:
                await asyncio.sleep(FAILED_SIGN_IN_DELAY)
                error = "That is not the admin token."
        response = site.render(
            request,
            "login.html",
            session,
            status_code=401 if error else 200,
            error=error,
            next=next_path,
            csrf_login=session.csrf,
        )
        site.set_cookie(request, response, session)
        return response

    async def logout(request: Request) -> Response:
        session = site.session_of(request)
        form = await request.form()
        if session is not None and session.csrf_ok(str(form.get("csrf_token", ""))):
            site.sessions.drop(session)
        return site.redirect(request, "/login")

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _next(request: Request, wanted: str) -> str:
    """Only ever redirect within the dashboard after sign-in (no open redirect)."""
    base = request.scope.get("root_path", "")
    if wanted.startswith(base + "/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return base + "/"
