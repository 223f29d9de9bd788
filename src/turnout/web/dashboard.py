"""The dashboard at `/dashboard/`: server-rendered pages (Jinja2 + htmx), no front-end build.

Every page needs the admin credential (a session cookie after sign-in); see `site.py` for the
session and CSRF rules, `form_bodies.py` for what a request body may be, and `pages/` for the
pages themselves.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from turnout.config import Config
from turnout.manage.services import Services
from turnout.web.form_bodies import FormBodies
from turnout.web.pages import (
    api_docs,
    auth,
    connections,
    dead_letters,
    debugger,
    home,
    people,
    playbook,
    privacy,
    sources,
)
from turnout.web.site import Site
from turnout.web.token_check import TokenCheck

STATIC = Path(__file__).parent / "static"


def build_dashboard(
    services: Services, config: Config, tokens: TokenCheck, openapi: api_docs.OpenAPI
) -> Starlette:
    site = Site(services, config, tokens)

    async def not_found(request: Request, exc: Exception) -> Response:
        session = site.session_of(request)
        return site.render(request, "missing.html", session, status_code=404, error=None)

    routes: list[Route | Mount] = [Mount("/static", StaticFiles(directory=STATIC), name="static")]
    for section in (auth, home, sources, connections, playbook, debugger, people, dead_letters):
        routes.extend(section.routes(site))
    routes.extend(privacy.routes(site))
    routes.extend(api_docs.routes(site, openapi))
    return Starlette(
        routes=routes,
        exception_handlers={404: not_found},
        middleware=[Middleware(FormBodies)],
    )
