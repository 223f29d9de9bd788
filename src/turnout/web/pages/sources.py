"""Sources: list and create; per source, rename, rotate the key, copy SDK snippets, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.manage.errors import ManagementError
from turnout.web.sessions import Session
from turnout.web.site import Site
from turnout.web.snippets import public_url, snippets


def routes(site: Site) -> list[Route]:
    async def listing(
        request: Request, session: Session, error: ManagementError | None = None, name: str = ""
    ) -> Response:
        return site.render(
            request,
            "sources.html",
            session,
            status_code=error.status if error else 200,
            sources=await site.sources.all(),
            error=error,
            name=name,
        )

    async def index(request: Request, session: Session) -> Response:
        return await listing(request, session)

    async def create(request: Request, session: Session) -> Response:
        form = await request.form()
        name = str(form.get("name", ""))
        try:
            source = await site.sources.create(name)
        except ManagementError as exc:
            return await listing(request, session, exc, name)
        session.say("ok", f"Source “{source.name}” created. Its write key is below.")
        return site.redirect(request, f"/sources/{source.name}")

    async def detail(
        request: Request, session: Session, error: ManagementError | None = None
    ) -> Response:
        name = request.path_params["name"]
        try:
            source = await site.sources.get(name)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        url = public_url(site.config.server.public_url, str(request.base_url))
        users = [c for c in await site.connections.all() if source.name in c.sources]
        return site.render(
            request,
            "source.html",
            session,
            status_code=error.status if error else 200,
            source=source,
            snippets=snippets(source.write_key, url),
            connections=users,
            rejects=await site.messages.rejects(source.name, 20),
            error=error,
        )

    async def rename(request: Request, session: Session) -> Response:
        form = await request.form()
        try:
            source = await site.sources.rename(
                request.path_params["name"], str(form.get("name", ""))
            )
        except ManagementError as exc:
            return await detail(request, session, exc)
        session.say("ok", f"Renamed to “{source.name}”.")
        return site.redirect(request, f"/sources/{source.name}")

    async def rotate(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        try:
            await site.sources.rotate(name)
        except ManagementError as exc:
            return await detail(request, session, exc)
        session.say("ok", "New write key issued. The old key is refused from now on.")
        return site.redirect(request, f"/sources/{name}")

    async def delete(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        try:
            await site.sources.delete(name)
        except ManagementError as exc:
            return await detail(request, session, exc)
        session.say("ok", f"Source “{name}” deleted.")
        return site.redirect(request, "/sources")

    return [
        Route("/sources", site.page(index)),
        Route("/sources", site.page(create), methods=["POST"]),
        Route("/sources/{name}", site.page(detail)),
        Route("/sources/{name}/rename", site.page(rename), methods=["POST"]),
        Route("/sources/{name}/rotate", site.page(rotate), methods=["POST"]),
        Route("/sources/{name}/delete", site.page(delete), methods=["POST"]),
    ]
