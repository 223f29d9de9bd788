"""The dashboard (server-rendered). For now an overview of sources and connections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from turnout.app import Turnout

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Turnout</title></head>
<body style="font-family:system-ui;margin:2rem"><h1>Turnout</h1>
<p>{sources} source(s), {connections} connection(s). The management API is at
<code>/api/v1/</code> (see <code>/api/v1/docs</code>).</p></body></html>"""


def build_dashboard(turnout: Turnout) -> Starlette:
    async def overview(_: Request) -> HTMLResponse:
        sources = await turnout.store.list_sources()
        connections = await turnout.store.list_connections()
        return HTMLResponse(_PAGE.format(sources=len(sources), connections=len(connections)))

    return Starlette(routes=[Route("/", overview)])
