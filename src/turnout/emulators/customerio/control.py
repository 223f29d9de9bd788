"""The ``/_emulator/`` control endpoints (no auth): inspect and steer a running emulator over HTTP.

They let a test or a benchmark in another process (or another language) read the read model and
the request record, inject faults, change settings and reset, the same as the Python API does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .emulator import CustomerIOEmulator


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = msgspec.json.decode(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def build_control_app(emu: CustomerIOEmulator) -> Starlette:
    """A Starlette app serving the control endpoints of `emu`."""

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    async def state(request: Request) -> Response:
        return _json(emu.state.snapshot())

    async def counters(request: Request) -> Response:
        # Cheap at any size (the full state is not): what benchmarks poll while they run.
        return _json({"state": dict(emu.state.counters), "requests": emu.requests.counters()})

    async def requests(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "1000"))
        records = list(emu.requests)[-limit:] if limit > 0 else []
        return _json({**emu.requests.counters(), "requests": records})

    async def sends(request: Request) -> Response:
        # Per event dedupe id, how many requests carried it, deduplicated or not: re-sends that
        # the read model hides by dropping repeated ids.
        return _json(emu.requests.sends())

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return _json({"faults": emu.faults.active})
        try:
            return _json(emu.faults.configure(await _body(request)))
        except (ValueError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            return _json({"error": str(exc)}, 400)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                emu.configure(**await _body(request))
            except (ValueError, TypeError, msgspec.ValidationError, msgspec.DecodeError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(emu.config)

    async def reset(request: Request) -> Response:
        try:
            parts = await _body(request)
        except (ValueError, msgspec.DecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        emu.reset(state=parts.get("state", True), requests=parts.get("requests", True),
                  faults=parts.get("faults", True))
        return _json({"ok": True})

    async def deliveries(request: Request) -> Response:
        body = await _body(request)
        emu.state.register_delivery(str(body["delivery_id"]), str(body["identifier"]))
        return _json({"ok": True})

    return Starlette(routes=[
        Route("/_emulator/health", health),
        Route("/_emulator/state", state),
        Route("/_emulator/counters", counters),
        Route("/_emulator/requests", requests),
        Route("/_emulator/sends", sends),
        Route("/_emulator/faults", faults, methods=["GET", "POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/deliveries", deliveries, methods=["POST"]),
    ])
