"""`turnout playbook test|preview`: try a connection's playbook without sending anything.

`test` runs fixture files (one Segment call per `*.json`) through the playbook and the
destination's mapping and prints what would be sent; a `NAME.expected.json` beside a fixture is
compared with the result, and any difference fails the command (exit 1) with a diff, so a
playbook can be checked in CI. `preview` runs it over the most recent calls the log keeps.

The playbook tried is the configuration file's for the connection (the one being edited); for
a connection the file does not declare, the revision in force in the store.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import msgspec
import typer

from turnout.playbooks.preview import Tried, summary, try_call

if TYPE_CHECKING:
    from turnout.config import Config
    from turnout.destinations.base import Destination
    from turnout.playbooks import Playbook

playbook_app = typer.Typer(
    help="Try a connection's playbook on fixtures or on recent calls, sending nothing.",
    no_args_is_help=True,
)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="turnout.toml to read")]
EXPECTED = ".expected.json"
COMPARED = ("outcome", "reason", "adjustments", "after", "operations")  # an expected file's keys
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Target:
    """What a connection's calls go through: its playbook, destination and settings."""

    playbook: Playbook
    destination: Destination
    settings: Any
    sources: list[str]


@playbook_app.command("test")
def test_fixtures(
    connection: Annotated[str, typer.Argument(help="Connection name")],
    fixtures: Annotated[
        Path, typer.Option("--fixtures", help="Directory of *.json calls (and *.expected.json)")
    ],
    config: ConfigOption = None,
    write_expected: Annotated[
        bool, typer.Option("--write-expected", help="Write each result as its .expected.json")
    ] = False,
) -> None:
    """Run each fixture through the playbook and the destination's mapping, and compare the
    result with the fixture's .expected.json when there is one (exit 1 on a difference)."""
    loaded = _load(config)
    target = asyncio.run(_target(loaded, connection))
    files = sorted(p for p in fixtures.glob("*.json") if not p.name.endswith(EXPECTED))
    if not files:
        _fail(f"no *.json fixtures in {fixtures}", 2)
    differences = 0
    for path in files:
        tried = _run_fixture(path, target)
        result = {key: value for key, value in tried.as_dict().items() if key in COMPARED}
        _print_tried(path.name, tried)
        expected_path = path.with_name(path.name.removesuffix(".json") + EXPECTED)
        if write_expected:
            expected_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
            typer.echo(f"  wrote {expected_path.name}")
        elif expected_path.exists():
            differences += _compare(expected_path, result)
    if differences:
        typer.secho(f"{differences} of {len(files)} fixture(s) differ from their expected result",
                    fg="red", err=True)  # fmt: skip
        raise typer.Exit(1)
    typer.echo(f"{len(files)} fixture(s) run")


@playbook_app.command("preview")
def preview(
    connection: Annotated[str, typer.Argument(help="Connection name")],
    last: Annotated[int, typer.Option(min=1, max=10_000, help="How many recent calls")] = 100,
    config: ConfigOption = None,
) -> None:
    """Run the playbook over the connection's most recent stored calls, sending nothing."""
    loaded = _load(config)
    calls, tried = asyncio.run(_preview(loaded, connection, last))
    if not tried:
        typer.echo(f"no stored call of {connection}'s sources is kept")
        raise typer.Exit(1)
    for call, result in zip(calls, tried, strict=True):
        _print_tried(f"offset {call.offset}", result, operations=False)
    counts = summary(tried)
    typer.echo(
        f"{counts['calls']} call(s): {counts['delivered']} delivered, {counts['filtered']}"
        f" filtered, {counts['dead_lettered']} dead-lettered, {counts['changed']} changed"
    )
    for reason, count in counts["filtered_by"].items():
        typer.echo(f"  filtered {count}: {reason}")


# -- the connection ------------------------------------------------------------------------------


def _load(path: Path | None) -> Config:
    from turnout.cli import _load as load_config

    return load_config(path)


async def _target(loaded: Config, name: str) -> Target:
    from turnout.destinations import registry
    from turnout.destinations.base import SettingsError, parse_settings
    from turnout.playbooks import Playbook, PlaybookError

    declared = next((c for c in loaded.connections if c.name == name), None)
    if declared is not None:
        destination_name, settings, sources = (
            declared.destination, declared.settings, declared.sources
        )  # fmt: skip
        playbook = Playbook.compile(
            declared.playbook, declared.consent, declared.consent_missing,
            base_dir=loaded.directory, allow_functions=True,
        )  # fmt: skip
    else:
        destination_name, settings, sources, playbook = await _stored(loaded, name)
    try:
        destination = registry.get(destination_name)
        parsed = parse_settings(destination, settings)
    except (KeyError, SettingsError, PlaybookError) as exc:
        _fail(f"connection {name}: {exc}", 2)
    return Target(playbook, destination, parsed, sources)


async def _stored(loaded: Config, name: str) -> tuple[str, dict[str, Any], list[str], Playbook]:
    from turnout.cli import opened
    from turnout.playbooks import Playbook, PlaybookError
    from turnout.playbooks.revisions import compile_revision

    async with opened(loaded) as service:
        assert service is not None
        connection = await service.store.get_connection(name)
        revision = await service.store.playbook_revision(name)
    if connection is None:
        _fail(f"no connection named {name!r}", 2)
    try:
        playbook = Playbook.compile([])
        if revision is not None:
            playbook = compile_revision(revision, loaded.directory)
    except PlaybookError as exc:
        _fail(f"connection {name}: {exc}", 2)
    return connection.destination, connection.settings, connection.sources, playbook


# -- fixtures ----------------------------------------------------------------------------------


def _run_fixture(path: Path, target: Target) -> Tried:
    """A fixture as the tracking API would store it: validated and filled in, with its file
    name as `messageId` and its own time as `receivedAt` when it has none (so results are the
    same on every run), then shaped and mapped."""
    from turnout.spec import timestamps
    from turnout.spec.incoming import decode_call
    from turnout.spec.normalise import InvalidMessage, RequestFacts, normalise

    raw = path.read_bytes()
    try:
        data = json.loads(raw)
        call = decode_call(raw)
        if not isinstance(data, dict):
            raise InvalidMessage("invalid", "a fixture is one call, a JSON object")
        moment = data.get("receivedAt") or data.get("timestamp") or data.get("originalTimestamp")
        received = timestamps.parse(moment, "receivedAt") if isinstance(moment, str) else EPOCH
        call.message_id = call.message_id or path.name.removesuffix(".json")
        source = data.get("source") or (target.sources[0] if target.sources else "")
        normalise(call, RequestFacts(received_at=received, ip=None), str(source), None)
    except (ValueError, InvalidMessage, msgspec.DecodeError) as exc:
        reason = exc.message if isinstance(exc, InvalidMessage) else str(exc)
        return Tried({}, "invalid", reason=f"{path.name}: not a valid call: {reason}")
    stored = msgspec.json.decode(msgspec.json.encode(call))
    return try_call(target.playbook, target.destination, target.settings, stored)


def _compare(expected_path: Path, result: dict[str, Any]) -> int:
    """1 (and a diff on stderr) when the result differs in a key the expected file has."""
    try:
        expected = json.loads(expected_path.read_text())
    except json.JSONDecodeError as exc:
        typer.secho(f"  {expected_path.name}: not JSON: {exc}", fg="red", err=True)
        return 1
    if not isinstance(expected, dict):
        typer.secho(f"  {expected_path.name}: expected a JSON object", fg="red", err=True)
        return 1
    actual = {key: result.get(key) for key in expected}
    if actual == expected:
        typer.echo(f"  matches {expected_path.name}")
        return 0
    diff = difflib.unified_diff(
        _lines(expected), _lines(actual), expected_path.name, "result", lineterm=""
    )
    typer.secho(f"  differs from {expected_path.name}:", fg="red", err=True)
    for line in diff:
        typer.echo("    " + line, err=True)
    return 1


def _lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True).splitlines()


# -- stored calls ------------------------------------------------------------------------------


async def _preview(loaded: Config, name: str, last: int) -> tuple[list[Any], list[Tried]]:
    from turnout.cli import opened
    from turnout.history import History

    target = await _target(loaded, name)
    sources = set(target.sources)
    async with opened(loaded, log=True) as service:
        if service is None:
            return [], []
        calls = await History(service.log, service.store).recent(
            lambda message: not sources or message.get("source") in sources, last
        )
    run = target.playbook, target.destination, target.settings
    return calls, [try_call(*run, call.message) for call in calls]


# -- printing ----------------------------------------------------------------------------------


def _print_tried(label: str, tried: Tried, *, operations: bool = True) -> None:
    before = tried.before
    what = " ".join(str(x) for x in (before.get("type"), before.get("event")) if x)
    line = f"{label}: {what + ' ' if what else ''}-> {tried.outcome}"
    if tried.reason:
        line += f": {tried.reason.splitlines()[0]}"
    typer.echo(line)
    if tried.rules_applied:
        typer.echo(f"  rules applied: {', '.join(tried.rules_applied)}")
    for adjustment in tried.adjustments:
        typer.echo(f"  adjusted: {adjustment}")
    if tried.outcome == "dead_lettered" and "\n" in tried.reason:
        for reason_line in tried.reason.splitlines()[1:]:
            typer.echo(f"  {reason_line}")
    if tried.changed:
        for after in tried.after:
            typer.echo(f"  after: {json.dumps(after, sort_keys=True)}")
    if operations:
        for operation in tried.operations:
            typer.echo(f"  operation: {json.dumps(operation, sort_keys=True)}")


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)
