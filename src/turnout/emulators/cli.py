"""``turnout emulate ...``: run a service emulator in the foreground.

The lead CLI mounts :data:`emulate_app` as the ``emulate`` sub-command, so
``turnout emulate customerio --port 9901`` serves an emulated Customer.io Track API that a
Turnout connection can use through its ``track_url`` setting.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

emulate_app = typer.Typer(
    name="emulate",
    help="Run an emulator of a destination service (for tests, benchmarks and demos).",
    no_args_is_help=True,
)


@emulate_app.callback()
def _emulate() -> None:
    """Run an emulator of a destination service (for tests, benchmarks and demos)."""


@emulate_app.command("customerio")
def customerio(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9901,
    site_id: Annotated[str, typer.Option(help="Site ID accepted by Basic auth.")] = "site-id",
    api_key: Annotated[str, typer.Option(help="Track API key accepted by Basic auth.")] = "api-key",
    region: Annotated[str, typer.Option(help="Region reported by /api/v1/accounts/region: us|eu.")]
    = "us",
    environment_id: Annotated[int, typer.Option(help="Workspace id reported by the region call.")]
    = 1,
    rate_limit: Annotated[
        int | None,
        typer.Option(help="Answer 429 + Retry-After beyond N requests per --rate-limit-period."),
    ] = None,
    rate_limit_period: Annotated[float, typer.Option(help="Seconds of the rate-limit window.")]
    = 3.0,
    unknown_person_events: Annotated[
        str, typer.Option(help="Events for unknown people: create | drop.")
    ] = "create",
    batch_errors_status: Annotated[
        int, typer.Option(help="Status of a v2 batch with failed items: 207 | 200.")
    ] = 207,
    processing_delay: Annotated[
        float, typer.Option(help="Seconds before an accepted call shows in the state.")
    ] = 0.0,
    record_limit: Annotated[int, typer.Option(help="Requests kept in the record.")] = 10_000,
    tls_cert: Annotated[str | None, typer.Option(help="PEM certificate: serve HTTPS.")] = None,
    tls_key: Annotated[str | None, typer.Option(help="PEM private key for --tls-cert.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve an emulated Customer.io Track API (v1 + v2) until interrupted.

    Control endpoints (no auth) live under /_emulator/: state, requests, faults, config, reset.
    """
    from .customerio import CustomerIOEmulator, EmulatorConfig
    from .customerio.server import serve

    if region not in ("us", "eu"):
        raise typer.BadParameter("region must be us or eu", param_hint="--region")
    if unknown_person_events not in ("create", "drop"):
        raise typer.BadParameter("must be create or drop", param_hint="--unknown-person-events")
    if batch_errors_status not in (200, 207):
        raise typer.BadParameter("must be 207 or 200", param_hint="--batch-errors-status")
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    config = EmulatorConfig(
        site_id=site_id, api_key=api_key,
        region=_region(region), environment_id=environment_id,
        rate_limit_enabled=rate_limit is not None,
        rate_limit_requests=rate_limit if rate_limit is not None else 3000,
        rate_limit_period=rate_limit_period,
        unknown_person_events="drop" if unknown_person_events == "drop" else "create",
        batch_errors_status=200 if batch_errors_status == 200 else 207,
        processing_delay=processing_delay, record_limit=record_limit,
    )
    emu = CustomerIOEmulator(config)
    scheme = "https" if tls_cert else "http"
    typer.echo(f"Customer.io emulator on {scheme}://{host}:{port} (site id {site_id!r})", err=True)
    serve(emu.app, host, port, certfile=tls_cert, keyfile=tls_key, log_level=log_level)


def _region(value: str) -> Literal["us", "eu"]:
    return "eu" if value == "eu" else "us"
