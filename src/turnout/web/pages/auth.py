"""Sign-in with the admin credential, and sign-out.

The sign-in form is protected against cross-site submission without a session (see
`sign_in_form.py`), so loading it stores nothing; only a successful sign-in creates a session,
always with a new id. Wrong tokens are throttled per client address (`token_check.py`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from turnout.web import sign_in_form
from turnout.web.site import Site


def routes(site: Site) -> list[Route]:
    def form(
        request: Request,
        next_path: str,
        error: str = "",
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        nonce, signed = site.sign_in_forms.issue(request)
        response = site.render(
            request,
            "login.html",
            None,
            status_code=status_code,
            error=error,
            next=next_path,
            csrf_login=signed,
        )
        response.headers.update(headers or {})
        site.set_cookie(
            request, response, nonce, name=sign_in_form.COOKIE, max_age=sign_in_form.MAX_AGE
        )
        return response

    async def login(request: Request) -> Response:
        next_path = _next(request, request.query_params.get("next", ""))
        if request.method == "GET":
            if site.session_of(request) is not None:
                return RedirectResponse(next_path, status_code=303)
            return form(request, next_path)
        posted = await request.form()
        next_path = _next(request, str(posted.get("next", "")))
        wait = site.tokens.retry_after(request)
        if wait:
            return form(
                request,
                next_path,
                f"Too many wrong tokens from your address. Try again in {_duration(wait)}.",
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        if not site.sign_in_forms.valid(request, str(posted.get("csrf_token", ""))):
            return form(
                request, next_path, "The sign-in form expired. Please try again.", status_code=401
            )
        token = str(posted.get("token", "")).strip()
        if not site.tokens.matches(request, token, "dashboard sign-in"):
            return form(request, next_path, "That is not the admin token.", status_code=401)
        previous = site.session_of(request)
        if previous is not None:
            site.sessions.drop(previous)
        moved = RedirectResponse(next_path, status_code=303)
        site.set_cookie(request, moved, site.sessions.sign_in().id)
        site.forget_cookie(request, moved, sign_in_form.COOKIE)
        return moved

    async def logout(request: Request) -> Response:
        session = site.session_of(request)
        posted = await request.form()
        if session is not None and session.csrf_ok(str(posted.get("csrf_token", ""))):
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


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"
