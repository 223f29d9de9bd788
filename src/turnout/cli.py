"""The `turnout` command: serve, set up, send a test call, trace and replay messages."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

from turnout import config as config_module
from turnout.config import Config, ConfigError
from turnout.spec import timestamps

if TYPE_CHECKING:
    from turnout.app import Turnout
    from turnout.history import Identity

PERSON_CALLS = 200  # calls `trace --user` shows at once (the history module's page size)
CHECK_TIMEOUT = 30.0  # seconds `check-connection` waits for the destination's answer

app = typer.Typer(
    help="Turnout: a customer data router. Tracking calls in, every destination out, nothing lost.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="turnout.toml to read", exists=False)
]
DataDirOption = Annotated[
    str | None, typer.Option("--data-dir", help="Data directory (default ./turnout-data)")
]


def _load(path: Path | None, data_dir: str | None = None) -> Config:
    if path is None and Path("turnout.toml").exists():
        path = Path("turnout.toml")
    try:
        loaded = config_module.load(path)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if data_dir:
        loaded.server.data_dir = data_dir
    return loaded


def _service(loaded: Config) -> Turnout:
    """The `Turnout` of this configuration; what it refuses at start (an unusable data
    directory, a missing secret key) is a configuration error like the file's own: exit 2."""
    from turnout.app import Turnout

    try:
        return Turnout(loaded)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


@asynccontextmanager
async def opened(loaded: Config, *, log: bool = False) -> AsyncIterator[Turnout | None]:
    """The configuration's store, and with `log` its log too, opened for a command that may run
    beside a server on the same files; None (with `log`) when Turnout never ran here, so
    nothing is kept. The SQLite log is read without being started: starting would run a writer
    and checkpoints beside the server's, and reading needs neither."""
    from turnout.log.sqlite import SQLiteLog

    service = _service(loaded)
    if log and isinstance(service.log, SQLiteLog) and not service.log.path.exists():
        yield None
        return
    await service.store.start()
    try:
        if log and isinstance(service.log, SQLiteLog):
            await service.log.open_to_read()
        elif log:
            await service.log.start()
        yield service
    finally:
        if log:
            await service.log.close()
        await service.store.close()


@app.command()
def serve(
    config: ConfigOption = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to listen on")] = None,
    data_dir: DataDirOption = None,
    role: Annotated[
        str | None, typer.Option(help="all | ingest | deliver (for several processes)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Run Turnout: tracking API, delivery, dashboard and management API in one process."""
    import uvicorn

    from turnout.app import build_app
    from turnout.http_limits import allow_descriptors, protocol_class

    loaded = _load(config, data_dir)
    if listen:
        loaded.server.listen = listen
    if role:
        if role not in ("all", "ingest", "deliver"):
            typer.secho("error: --role must be all, ingest or deliver", fg="red", err=True)
            raise typer.Exit(2)
        loaded.server.role = role  # type: ignore[assignment]
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_level.lower() != "debug":
        # httpx logs every request it sends at INFO: a line per batch sent to a destination.
        # Turnout logs what changes instead (a connection paused, its credentials rejected).
        for chatty in ("httpx", "httpcore"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    host, port = loaded.host_port
    service = _service(loaded)

    def ready() -> None:
        _tune_runtime()
        _announce(service, host, port)

    service.on_ready = ready
    allow_descriptors(loaded.server.max_connections)
    uvicorn.run(
        build_app(loaded, service),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http=protocol_class(loaded.server),  # httptools, with [server]'s connection limits
        timeout_graceful_shutdown=20,
    )


def _tune_runtime() -> None:
    """Process-wide settings for a long-running server, applied once everything is loaded.

    `gc.freeze` moves the objects of startup (modules, configuration) out of the collector's way,
    so collections scan only what requests create; a higher first threshold makes collections
    rarer (a batch of 100 calls allocates thousands of short-lived objects, and the default of
    700 collected several times per request: measured, batch p99 at half load 17-21 ms -> 17-19
    ms and 80-85k -> 84-90k events/s). A shorter switch interval lets the log's
    writer thread take the GIL promptly between the event loop's requests, which shortens
    group commits under load.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    sys.setswitchinterval(0.0005)


def _announce(service: Any, host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    lines = [
        f"Turnout is listening on {base}",
        f"  tracking API   {base}/v1/  (Segment-compatible: point your SDK's host here)",
        f"  dashboard      {base}/dashboard/",
        f"  data directory {service.config.data_path.resolve()}",
    ]
    first = service.first_start
    if first.write_key:
        lines.append(f"  write key of source 'default' (generated): {first.write_key}")
    if first.admin_token:
        lines.append(
            f"  admin token (generated, kept in {service.config.data_path / 'admin.token'}):"
            f" {first.admin_token}"
        )
    print("\n".join(lines), flush=True)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the file")] = Path("turnout.toml"),
) -> None:
    """Write a commented turnout.toml to start from: one example per destination."""
    if path.exists():
        typer.secho(f"error: {path} exists; not overwriting it", fg="red", err=True)
        raise typer.Exit(2)
    from turnout.destinations import registry
    from turnout.sample_config import SAMPLE

    path.write_text(SAMPLE)
    typer.echo(f"wrote {path}; edit it, then run: turnout serve --config {path}")
    typer.echo("destinations in it: " + ", ".join(registry.names()))


@app.command()
def send(
    write_key: Annotated[str, typer.Option(help="The source's write key")],
    url: Annotated[str, typer.Option(help="Turnout's address")] = "http://127.0.0.1:8088",
    call: Annotated[str, typer.Option("--type", help="identify | track | page | ...")] = "track",
    user_id: Annotated[str, typer.Option(help="userId")] = "turnout-test-user",
    event: Annotated[str, typer.Option(help="Event name for track")] = "Turnout Test Event",
    data: Annotated[str, typer.Option(help="JSON for traits/properties")] = "{}",
) -> None:
    """Send one tracking call, as an SDK would, and print the answer."""
    payload: dict[str, Any] = {"userId": user_id, "messageId": str(uuid.uuid4())}
    fields = json.loads(data)
    if call == "identify":
        payload["traits"] = fields
    else:
        payload["properties"] = fields
    if call == "track":
        payload["event"] = event
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    response = httpx.post(
        f"{url}/v1/{call}", json=payload, headers={"Authorization": f"Basic {auth}"}
    )
    typer.echo(f"{response.status_code} {response.text}  messageId={payload['messageId']}")
    if response.status_code != 200:
        raise typer.Exit(1)


def _admin(loaded: Config) -> tuple[str, dict[str, str]]:
    token = loaded.server.admin_token
    if not token:
        path = loaded.data_path / "admin.token"
        if not path.exists():
            typer.secho(f"error: no admin token at {path}; start turnout first", fg="red", err=True)
            raise typer.Exit(2)
        token = path.read_text().strip()
    host, port = loaded.host_port
    return f"http://{host}:{port}/api/v1", {"Authorization": f"Bearer {token}"}


def _call(loaded: Config, method: str, path: str, body: Any = None) -> Any:
    base, headers = _admin(loaded)
    try:
        response = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        typer.secho(f"error: cannot reach Turnout at {base}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        typer.secho(f"error: {response.status_code} {response.text}", fg="red", err=True)
        raise typer.Exit(1)
    return response.json()


def _when(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    moment = timestamps.read(text)  # no offset: UTC, as everywhere in Turnout
    if moment is None:
        raise typer.BadParameter(f"{text!r} is neither unix seconds nor an ISO-8601 date-time")
    return moment.timestamp()


@app.command()
def replay(
    connection: Annotated[str, typer.Argument(help="Connection name")],
    since: Annotated[str | None, typer.Option(help="ISO time or unix seconds")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or unix seconds")] = None,
    reason: Annotated[str | None, typer.Option(help="Text the reason contains")] = None,
    message_id: Annotated[str | None, typer.Option(help="Just this message")] = None,
    from_time: Annotated[
        str | None,
        typer.Option("--from", help="Instead: re-deliver everything received since this time"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Re-deliver dead letters (filtered), or everything since a point in time (--from)."""
    loaded = _load(config)
    if from_time is not None:
        result = _call(
            loaded, "POST", f"/connections/{connection}/redeliver", {"since": _when(from_time)}
        )
        typer.echo(f"re-delivering {connection} from log offset {result['from_offset']}")
        return
    result = _call(
        loaded,
        "POST",
        "/dead-letters/replay",
        {
            "connection": connection,
            "since": _when(since),
            "until": _when(until),
            "reason": reason,
            "message_id": message_id,
        },
    )
    typer.echo(f"replaying {result['replaying']} dead letter(s) to {connection}")


@app.command()
def trace(
    message_id: Annotated[str | None, typer.Argument(help="The messageId to look up")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Instead: every call of this userId")
    ] = None,
    anonymous_id: Annotated[
        str | None,
        typer.Option("--anonymous-id", help="Instead: every call of this anonymousId"),
    ] = None,
    after: Annotated[
        int, typer.Option(min=0, help="With --user/--anonymous-id: start after this log offset")
    ] = 0,
    limit: Annotated[
        int, typer.Option(min=1, help="With --user/--anonymous-id: show at most this many calls")
    ] = PERSON_CALLS,
    fixtures: Annotated[
        Path | None,
        typer.Option(
            help="With --user/--anonymous-id: also write each call shown to this directory, as "
            "a fixture for `turnout playbook test` (MESSAGE_ID.json)",
            file_okay=False,
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show what happened to one message for each connection, or to every call of one person,
    in order (works while Turnout is stopped)."""
    if sum(value is not None for value in (message_id, user, anonymous_id)) != 1:
        typer.secho(
            "error: give one of MESSAGE_ID, --user ID or --anonymous-id ID", fg="red", err=True
        )
        raise typer.Exit(2)
    if fixtures is not None and message_id is not None:
        typer.secho("error: --fixtures goes with --user or --anonymous-id", fg="red", err=True)
        raise typer.Exit(2)
    loaded = _load(config, data_dir)
    if user is not None:
        _trace_person(loaded, "userId", user, after, limit, fixtures)
        return
    if anonymous_id is not None:
        _trace_person(loaded, "anonymousId", anonymous_id, after, limit, fixtures)
        return
    assert message_id is not None

    async def look() -> list[Any]:
        async with opened(loaded) as service:
            assert service is not None
            return await service.services.messages.deliveries(message_id)

    records = asyncio.run(look())
    if not records:
        typer.echo(f"no delivery recorded for {message_id} (not received, or not yet read)")
        raise typer.Exit(1)
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.updated_at))
        typer.echo(f"{r.connection}: {r.fate.value} after {r.attempts} attempt(s) at {when}")
        if r.detail:
            typer.echo(f"  {r.detail}")
        if r.request:
            typer.echo(f"  sent:     {r.request[:500]}")
        if r.response:
            typer.echo(f"  answered: {r.response[:500]}")


def _trace_person(
    loaded: Config, identity: Identity, value: str, after: int, limit: int, fixtures: Path | None
) -> None:
    """Every call of one person the log keeps, oldest first, each with its fate per connection."""
    from turnout.history import PersonCalls, call_label

    async def look() -> PersonCalls:
        async with opened(loaded, log=True) as service:
            if service is None:
                return PersonCalls(identity, value, [], None)
            return await service.services.messages.person(identity, value, after=after, limit=limit)

    found = asyncio.run(look())
    flag = "--user" if identity == "userId" else "--anonymous-id"
    if not found.calls:
        later = f" after offset {after}" if after else ""
        typer.echo(f"no call with {identity} {value} is kept{later}")
        raise typer.Exit(1)
    typer.echo(f"{len(found.calls)} call(s) with {identity} {value}, oldest first:")
    for call in found.calls:
        m = call.message
        typer.echo(
            f"{m.get('timestamp')}  {m.get('source')}  {m.get('type')}  {call_label(m)}"
            f"  (messageId {call.message_id})"
        )
        if not call.fates:
            typer.echo("  pending: no connection has recorded it yet")
        for r in call.fates:
            resolved = r.attempts > 1 and r.fate.resolved  # a retry's detail names its attempt
            attempts = f" after {r.attempts} attempts" if resolved else ""
            detail = f": {r.detail}" if r.detail else ""
            typer.echo(f"  {r.connection}: {r.fate.value}{attempts}{detail}")
    if found.more_after is not None:
        typer.echo(f"more calls follow: turnout trace {flag} {value} --after {found.more_after}")
    if fixtures is not None:
        from turnout.playbooks.fixtures import write_fixture

        fixtures.mkdir(parents=True, exist_ok=True)
        for call in found.calls:
            write_fixture(fixtures, call.message_id, call.message)
        typer.echo(f"wrote {len(found.calls)} fixture(s) to {fixtures}")


@app.command("check-connection")
def check_connection(
    name: Annotated[str, typer.Argument(help="Connection name")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Verify a connection's credentials with its destination (any registered one)."""
    from turnout.destinations.base import SettingsError
    from turnout.destinations.registry import UnknownDestination
    from turnout.manage.errors import ManagementError

    loaded = _load(config, data_dir)

    async def check() -> Any:
        async with opened(loaded) as service:
            assert service is not None
            try:
                await service._apply_file_config()
                return await service.services.connections.check_saved(name, CHECK_TIMEOUT)
            except ManagementError:  # the one it raises: no such connection
                typer.secho(f"error: no connection named {name!r}", fg="red", err=True)
                raise typer.Exit(2) from None
            except (SettingsError, UnknownDestination) as exc:
                typer.secho(f"error: connection {name!r}: {exc}", fg="red", err=True)
                raise typer.Exit(2) from None

    result = asyncio.run(check())
    colour = "green" if result.ok else "red"
    typer.secho(("ok: " if result.ok else "failed: ") + result.message, fg=colour)
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", fg="yellow")
    if not result.ok:
        raise typer.Exit(1)


def _mount_emulators() -> None:
    from turnout.emulators.cli import emulate_app

    app.add_typer(emulate_app, name="emulate", help="Run a local emulator of a destination API")


_mount_emulators()


def _mount_playbooks() -> None:
    from turnout.playbooks.cli import playbook_app

    app.add_typer(playbook_app, name="playbook", help="Try a connection's playbook")


_mount_playbooks()


def _mount_privacy() -> None:
    from turnout.privacy.cli import privacy_app

    app.add_typer(privacy_app, name="privacy", help="Suppress, unsuppress or delete people")


_mount_privacy()


def main() -> None:  # pragma: no cover - console entry
    app(sys.argv[1:])
