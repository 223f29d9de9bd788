"""The landing page: every connection's state and last hour at a glance, and the sources."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.web.pages.privacy import suppressed_calls
from turnout.web.sessions import Session
from turnout.web.site import Site


def routes(site: Site) -> list[Route]:
    async def home(request: Request, session: Session) -> Response:
        rows = []
        for connection in await site.connections.all():
            summary = await site.connections.overview(connection.name, "1h")
            rows.append(
                {
                    "connection": connection,
                    "status": site.connections.status(connection),
                    "destination": site.connections.describe(connection),
                    "funnel": summary.funnel,
                }
            )
        sources = await site.sources.all()
        # Calls of suppressed people answered but not taken in, per source (Privacy).
        suppressed = {source.name: suppressed_calls([source.name]) for source in sources}
        return site.render(
            request, "home.html", session, rows=rows, sources=sources, suppressed=suppressed
        )

    return [Route("/", site.page(home))]
