"""What every dashboard page shares: the services, the templates, sign-in and CSRF checks.

Page handlers are `async def handler(request, session) -> Response`; `Site.page` wraps them so
that every page needs a signed-in session and every state-changing request a valid CSRF token
(form field `csrf_token`, or the `X-CSRF-Token` header that htmx sends from the body's
`hx-headers`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from turnout.config import Config
from turnout.manage.services import Services
from turnout.web.sessions import COOKIE, Session, Sessions
from turnout.web.shutdown import ShutdownNotice
from turnout.web.sign_in_form import SignInForms
from turnout.web.token_check import TokenCheck

Handler = Callable[[Request, Session], Awaitable[Response]]
_SAFE = ("GET", "HEAD", "OPTIONS")
TEMPLATES = Path(__file__).parent / "templates"


def when(unix: float | None) -> str:
    """A timestamp as people read it in a table: UTC, to the second."""
    if not unix:
        return "—"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(unix: float | None) -> str:
    if not unix:
        return "—"
    seconds = max(0, int(time.time() - unix))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago" if seconds > 4 else "just now"


def pretty(value: Any) -> str:
    """JSON for people: indented, non-ASCII kept (the template escapes it)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class Site:
    def __init__(self, services: Services, config: Config, tokens: TokenCheck) -> None:
        self.config = config
        self.tokens = tokens
        self.connections = services.connections
        self.sources = services.sources
        self.dead_letters = services.dead_letters
        self.messages = services.messages
        self.playbooks = services.playbooks
        self.privacy = services.privacy
        self.sessions = Sessions()
        self.sign_in_forms = SignInForms()
        self.shutdown = ShutdownNotice()
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.autoescape = True
        self.templates.env.filters["when"] = when
        self.templates.env.filters["ago"] = ago
        self.templates.env.filters["q"] = lambda value: quote(str(value), safe="")
        self.templates.env.filters["pretty"] = pretty

    # -- rendering ----------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "base": base,
                "session": session,
                "csrf": session.csrf if session else "",
                "flash": session.take_flash() if session else [],
                "section": template.split(".")[0].split("_")[0],
                **context,
            },
            status_code=status_code,
        )
        self._harden(response)
        return response

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        """303 to a dashboard path (Post/Redirect/Get: a reload never re-submits a form)."""
        return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)

    @staticmethod
    def _harden(response: Response) -> None:
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        )

    # -- sessions -----------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def set_cookie(
        self,
        request: Request,
        response: Response,
        value: str,
        name: str = COOKIE,
        max_age: int | None = None,
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path=request.scope.get("root_path", "") or "/",
        )

    def forget_cookie(self, request: Request, response: Response, name: str) -> None:
        response.delete_cookie(
            name,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path=request.scope.get("root_path", "") or "/",
        )

    def stream_stop(self, session: Session) -> asyncio.Event:
        """Set when a long-lived response must end: the server stops or `session` ends
        (signed out, expired), so an open stream never outlives the sign-in that opened it."""
        self.shutdown.also_set(session.ended)
        return session.ended

    def _secure(self, request: Request) -> bool:
        """Secure cookies whenever the dashboard is reached over HTTPS (directly, behind a
        proxy that says so, or by the configured public URL); plain-HTTP localhost could not
        keep a Secure cookie at all."""
        forwarded = request.headers.get("x-forwarded-proto", "")
        public = self.config.server.public_url
        return request.url.scheme == "https" or forwarded == "https" or public.startswith("https")

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": self._login(request)})
                return RedirectResponse(self._login(request), status_code=303)
            if request.method not in _SAFE:
                token = request.headers.get("x-csrf-token")
                if token is None:
                    form = await request.form()
                    value = form.get("csrf_token")
                    token = value if isinstance(value, str) else None
                if not session.csrf_ok(token):
                    return HTMLResponse(
                        "The form expired or came from another site. Go back, reload the page"
                        " and try again.",
                        status_code=403,
                    )
            return await handler(request, session)

        return guarded

    def _login(self, request: Request) -> str:
        base = request.scope.get("root_path", "")
        path = request.url.path
        target = path if request.method == "GET" else base + "/"
        return f"{base}/login?next={quote(target, safe='')}"
