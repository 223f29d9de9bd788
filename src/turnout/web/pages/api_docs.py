"""The management API's browsable description (Swagger UI) at `/dashboard/api-docs`.

It lives in the dashboard so that "behind sign-in" means the dashboard's own sign-in (a browser
cannot send the bearer token to `/api/v1/docs` by itself); `/api/v1/docs` redirects here.
`[server] api_docs_public = true` opens it, and `/api/v1/openapi.json`, to anyone.

Swagger UI's script and style sheet are served from the installed `swagger-ui-bundle-v2`
package, never from a third-party CDN: the page works offline, and no other site's code runs
with the dashboard's origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path

from turnout.web.sessions import Session
from turnout.web.site import Site

ASSETS = Path(swagger_ui_path)
SERVED = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})
# Swagger UI sets inline styles on the elements it draws; scripts stay 'self' only.
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " frame-ancestors 'none'"
)

OpenAPI = Callable[[], dict[str, Any]]
Handler = Callable[[Request, Session | None], Awaitable[Response]]


def routes(site: Site, openapi: OpenAPI) -> list[Route]:
    public = site.config.server.api_docs_public

    async def page(request: Request, session: Session | None) -> Response:
        response = site.render(request, "api_docs.html", session)
        response.headers["Content-Security-Policy"] = CSP
        return response

    async def description(request: Request, session: Session | None) -> Response:
        api_root = request.scope.get("root_path", "").removesuffix("/dashboard") + "/api/v1"
        return JSONResponse({**openapi(), "servers": [{"url": api_root}]})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in SERVED:
            return Response("not found", status_code=404)
        return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})

    def door(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        if not public:
            return site.page(handler)

        async def open_to_all(request: Request) -> Response:
            return await handler(request, site.session_of(request))

        return open_to_all

    return [
        Route("/api-docs", door(page)),
        Route("/api-docs/openapi.json", door(description)),
        Route("/api-docs/assets/{name}", asset),
    ]
