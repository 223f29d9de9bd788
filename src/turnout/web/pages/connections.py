"""Connections: add (Save activates at once), edit, test credentials, pause/resume, delete, and
each connection's delivery overview."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.config import RATE_LIMIT_MAX, RATE_LIMIT_MIN_EXCLUSIVE
from turnout.destinations import registry
from turnout.destinations.base import Destination
from turnout.manage.connections import destination_named
from turnout.manage.errors import ManagementError, invalid
from turnout.manage.overview import DEFAULT_WINDOW, WINDOWS
from turnout.store.models import Connection
from turnout.store.secrets import mask
from turnout.web.chart import rate_chart
from turnout.web.pages.privacy import suppressed_calls
from turnout.web.sessions import Session
from turnout.web.settings_form import FormField, form_fields, settings_from_form, table_rows
from turnout.web.site import Site


def _lists(form: FormData) -> dict[str, list[str]]:
    return {key: [str(v) for v in form.getlist(key)] for key in form}


def _rate_limit(form: FormData) -> float | None:
    text = str(form.get("rate_limit", "")).strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise invalid("rate_limit", "rate_limit: a number of requests per second") from None
    if not RATE_LIMIT_MIN_EXCLUSIVE < value <= RATE_LIMIT_MAX:
        raise invalid(
            "rate_limit",
            f"rate_limit: above {RATE_LIMIT_MIN_EXCLUSIVE:g} and at most {RATE_LIMIT_MAX:,.0f}"
            " requests per second",
        )
    return value


def _shown(fields: list[FormField], values: dict[str, Any]) -> dict[str, Any]:
    """What the form shows: the values, but never a secret (left blank = keep the stored); a
    secret table keeps its names and blanks its values."""
    shown: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name, f.default)
        if f.kind == "table":
            rows = table_rows(value)
            shown[f.name] = [(k, "" if f.secret else v) for k, v in rows]
        else:
            shown[f.name] = "" if f.secret else value
    return shown


def _masked(fields: list[FormField], saved: dict[str, Any]) -> dict[str, Any]:
    """The stored secrets as the form may hint at them (`sk••••ET`); per row for a table."""
    masked: dict[str, Any] = {}
    for f in fields:
        value = saved.get(f.name)
        if not f.secret or not value:
            continue
        if isinstance(value, dict):
            masked[f.name] = {k: mask(str(v)) for k, v in value.items()}
        else:
            masked[f.name] = mask(str(value))
    return masked


def routes(site: Site) -> list[Route]:
    def found(name: str) -> tuple[Destination, list[FormField]]:
        destination = destination_named(name)
        return destination, form_fields(destination)

    async def form_page(
        request: Request,
        session: Session,
        *,
        destination: Destination,
        existing: Connection | None,
        values: dict[str, Any],
        chosen: list[str],
        name: str = "",
        rate_limit: str = "",
        error: ManagementError | None = None,
    ) -> Response:
        fields = form_fields(destination)
        return site.render(
            request,
            "connection_form.html",
            session,
            status_code=error.status if error else 200,
            existing=existing,
            destination=destination,
            fields=fields,
            values=_shown(fields, values),
            masked=_masked(fields, existing.settings if existing else {}),
            sources=await site.sources.all(),
            chosen=chosen,
            name=name,
            rate_limit=rate_limit,
            error=error,
        )

    async def index(request: Request, session: Session) -> Response:
        rows = [
            {
                "connection": c,
                "status": site.connections.status(c),
                "destination": site.connections.describe(c),
            }
            for c in await site.connections.all()
        ]
        return site.render(request, "connections.html", session, rows=rows)

    async def new(request: Request, session: Session) -> Response:
        """Step one: choose a destination; step two (`?destination=`): its settings."""
        chosen_type = request.query_params.get("destination", "")
        if not chosen_type:
            return site.render(
                request,
                "connection_new.html",
                session,
                destinations=registry.all_destinations(),
            )
        try:
            destination, fields = found(chosen_type)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        sources = await site.sources.all()
        return await form_page(
            request,
            session,
            destination=destination,
            existing=None,
            values={f.name: f.default for f in fields},
            chosen=[s.name for s in sources][:1],
        )

    async def create(request: Request, session: Session) -> Response:
        form = await request.form()
        try:
            destination, fields = found(str(form.get("destination", "")) or registry.DEFAULT)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        settings = settings_from_form(fields, _lists(form))
        chosen = [str(v) for v in form.getlist("sources")]
        name = str(form.get("name", ""))
        try:
            connection = await site.connections.create(
                name,
                destination.name,
                settings,
                chosen,
                rate_limit=_rate_limit(form),
                deliver_history=form.get("deliver_history") == "true",
            )
        except ManagementError as exc:
            return await form_page(
                request,
                session,
                destination=destination,
                existing=None,
                values=settings,
                chosen=chosen,
                name=name,
                rate_limit=str(form.get("rate_limit", "")),
                error=exc,
            )
        session.say("ok", f"Connection “{connection.name}” saved and delivering.")
        return site.redirect(request, f"/connections/{connection.name}")

    async def edit(request: Request, session: Session) -> Response:
        try:
            connection = await site.connections.get(request.path_params["name"])
            destination, _ = found(connection.destination)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        return await form_page(
            request,
            session,
            destination=destination,
            existing=connection,
            values=connection.settings,
            chosen=connection.sources,
            rate_limit="" if connection.rate_limit is None else f"{connection.rate_limit:g}",
        )

    async def update(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        form = await request.form()
        chosen = [str(v) for v in form.getlist("sources")]
        try:
            existing = await site.connections.get(name)
            destination, fields = found(existing.destination)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        settings = settings_from_form(fields, _lists(form))
        try:
            await site.connections.update(
                name,
                settings=settings,
                sources=chosen,
                rate_limit=_rate_limit(form),
                set_rate_limit=True,
            )
        except ManagementError as exc:
            if exc.status == 404:
                return site.render(request, "missing.html", session, status_code=404, error=exc)
            return await form_page(
                request,
                session,
                destination=destination,
                existing=existing,
                values=settings,
                chosen=chosen,
                rate_limit=str(form.get("rate_limit", "")),
                error=exc,
            )
        session.say("ok", f"Saved. “{name}” restarted with the new settings; nothing was lost.")
        return site.redirect(request, f"/connections/{name}")

    async def check(request: Request, session: Session) -> Response:
        """htmx: test the credentials typed in the form (stored secrets fill in blanks)."""
        form = await request.form()
        stored = str(form.get("stored_from", "")) or None
        try:
            kind = str(form.get("destination", ""))
            if not kind:  # the saved connection's, else the API's default
                kind = (await site.connections.get(stored)).destination if stored else ""
            destination, fields = found(kind or registry.DEFAULT)
            settings = settings_from_form(fields, _lists(form))
            result = await site.connections.check(destination.name, settings, stored)
            ok, message, warnings = result.ok, result.message, result.warnings
        except ManagementError as exc:
            ok, message, warnings = False, exc.message, []
        return site.render(
            request, "_check.html", session, ok=ok, message=message, warnings=warnings
        )

    async def detail(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        try:
            connection = await site.connections.get(name)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        window = request.query_params.get("window", DEFAULT_WINDOW)
        context = await _overview_context(site, connection, window)
        return site.render(
            request,
            "connection.html",
            session,
            connection=connection,
            **context,
        )

    async def overview_panel(request: Request, session: Session) -> Response:
        """htmx: the overview panel alone, for the window buttons and the auto-refresh."""
        name = request.path_params["name"]
        try:
            connection = await site.connections.get(name)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        context = await _overview_context(site, connection, request.query_params.get("window", ""))
        return site.render(request, "_overview.html", session, **context)

    def toggle(enabled: bool) -> Any:
        async def handler(request: Request, session: Session) -> Response:
            name = request.path_params["name"]
            try:
                await site.connections.set_enabled(name, enabled)
            except ManagementError as exc:
                return site.render(request, "missing.html", session, status_code=404, error=exc)
            session.say("ok", f"“{name}” {'resumed' if enabled else 'paused'}.")
            return site.redirect(request, f"/connections/{name}")

        return handler

    async def test_saved(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        try:
            saved = await site.connections.get(name)
            result = await site.connections.check(saved.destination, saved.settings)
            ok, message, warnings = result.ok, result.message, result.warnings
        except ManagementError as exc:
            ok, message, warnings = False, exc.message, []
        return site.render(
            request, "_check.html", session, ok=ok, message=message, warnings=warnings
        )

    async def delete(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        try:
            await site.connections.delete(name)
        except ManagementError as exc:
            return site.render(request, "missing.html", session, status_code=404, error=exc)
        session.say("ok", f"Connection “{name}” deleted.")
        return site.redirect(request, "/connections")

    return [
        Route("/connections", site.page(index)),
        Route("/connections", site.page(create), methods=["POST"]),
        Route("/connections/new", site.page(new)),
        Route("/connections/check", site.page(check), methods=["POST"]),
        Route("/connections/{name}", site.page(detail)),
        Route("/connections/{name}/overview", site.page(overview_panel)),
        Route("/connections/{name}/edit", site.page(edit)),
        Route("/connections/{name}/edit", site.page(update), methods=["POST"]),
        Route("/connections/{name}/test", site.page(test_saved), methods=["POST"]),
        Route("/connections/{name}/pause", site.page(toggle(False)), methods=["POST"]),
        Route("/connections/{name}/resume", site.page(toggle(True)), methods=["POST"]),
        Route("/connections/{name}/delete", site.page(delete), methods=["POST"]),
    ]


async def _overview_context(site: Site, connection: Connection, window: str) -> dict[str, Any]:
    name = connection.name
    summary = await site.connections.overview(name, window)
    letters = await site.dead_letters.count(name)
    return {
        "name": name,
        "overview": summary,
        "windows": list(WINDOWS),
        "chart": rate_chart(summary.series, summary.bucket_seconds, summary.since),
        "status": site.connections.status(connection),
        "destination": site.connections.describe(connection),
        "open_letters": letters,
        "suppressed_calls": suppressed_calls(connection.sources),
    }
