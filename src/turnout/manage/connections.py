"""Managing connections: validate, save and apply at once, pause/resume, test credentials.

Saving goes through the destination's settings struct, so the dashboard, the API and the
configuration file accept exactly the same settings and fail with the same field-named errors.
Secrets are write-only: an update that leaves a secret empty (or sends back its masked form)
keeps the stored value, so nobody has to re-type a key to change something else; except where
the key would go: when a setting that decides the address (the destination's `address_fields`)
changes, the secret must be entered again, so a stored key never reaches an address of someone's
choosing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec

from turnout.destinations import registry
from turnout.destinations.base import (
    CheckResult,
    ConnectionStatus,
    Destination,
    SettingsError,
    Unlimited,
    parse_settings,
    run_check,
)
from turnout.manage.delivery import Delivery
from turnout.manage.errors import ManagementError, invalid, not_found
from turnout.manage.names import NAME_RULE, RESERVED, valid_name
from turnout.manage.overview import Overview, overview
from turnout.store.base import StateStore
from turnout.store.models import Connection
from turnout.store.secrets import mask
from turnout.validation import UNKNOWN_FIELD

# The name the management API's and the dashboard's lines carry too: one name to filter on.
logger = logging.getLogger("turnout.web")

CHECK_TIMEOUT = 8.0  # seconds: a credentials check answers a person waiting at a form

# A settings error reads "settings: field: what is wrong" (`turnout.validation`); a nested
# field ("headers[...]") is reported as the setting that holds it.
_PREFIXED = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*)(?:[.\[][^:]*)?: (?P<what>.*)$")


def settings_error(exc: SettingsError) -> ManagementError:
    """Rephrase a settings validation error so that it starts with the field it is about."""
    text = str(exc).removeprefix("settings: ")
    match = _PREFIXED.match(text)
    if match is None:
        return invalid("settings", f"settings: {text}")
    field = match["field"]
    if match["what"] == UNKNOWN_FIELD:
        return invalid(field, f"{field}: not a setting of this destination")
    return invalid(field, text)


def _lane_state(lane_state: str, blocked_people: int) -> ConnectionStatus:
    """The delivery lane's state in the contract's words: the one place they are mapped."""
    if lane_state == "paused":
        return ConnectionStatus.PAUSED
    if lane_state == "credentials_rejected":
        return ConnectionStatus.CREDENTIALS_REJECTED
    if lane_state == "stopped":
        return ConnectionStatus.STOPPED
    return ConnectionStatus.RETRYING if blocked_people else ConnectionStatus.OK


def settings_error_text(exc: Exception) -> str:
    """Why saved settings do not fit (unknown destination, or the field at fault)."""
    if isinstance(exc, SettingsError):
        return settings_error(exc).message
    return f"destination: {exc}"


def destination_named(name: str) -> Destination:
    try:
        return registry.get(name)
    except KeyError:
        raise invalid(
            "destination",
            f"destination: unknown destination {name!r}; known: {', '.join(registry.names())}",
        ) from None


def keep_stored_secrets(
    destination: Destination, new: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any]:
    """Secrets left empty, or sent back masked, keep their stored value (in a secret table,
    such as a webhook's headers, value by value)."""
    merged = dict(new)
    for key in destination.secret_fields:
        value = merged.get(key)
        old = stored.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = {
                name: old[name] if old.get(name) and v in ("", mask(str(old[name]))) else v
                for name, v in value.items()
            }
        elif old and (value in (None, "") or value == mask(str(old))):
            merged[key] = old
    return merged


def secret_needed(destination: Destination, secret: str, changed: list[str]) -> ManagementError:
    """The answer to reusing a stored secret for a new address: type it again."""
    labels = {f.name: f.label for f in destination.fields}
    return invalid(
        secret,
        f"{secret}: enter the {labels.get(secret, secret)} again: the address changed"
        f" ({', '.join(changed)}), and a stored secret is only sent to the address it was saved"
        " for",
    )


async def ask_destination(destination: Destination, parsed: Any, timeout: float) -> CheckResult:
    """The destination's answer to a credentials check with these parsed settings, within
    `timeout` seconds; the client is closed whatever happens."""
    client = destination.client(parsed, Unlimited())
    try:
        return await run_check(client, timeout)
    finally:
        await client.aclose()


class Connections:
    """Connections as users manage them, each change applied to the running lanes at once.

    `delivers` is false in a process that only takes calls in (`--role ingest`): it saves
    connections but runs no lanes, and says so in each connection's status.
    """

    def __init__(self, store: StateStore, delivery: Delivery, *, delivers: bool) -> None:
        self._store = store
        self._delivery = delivery
        self._delivers = delivers

    async def all(self) -> list[Connection]:
        return await self._store.list_connections()

    async def get(self, name: str) -> Connection:
        connection = await self._store.get_connection(name)
        if connection is None:
            raise not_found("connection", name)
        return connection

    def status(self, connection: Connection) -> dict[str, Any]:
        """Where the connection stands (`state`: a `ConnectionStatus` value, the one word pages
        and API answers branch on) and, while its lane runs, the lane's live figures."""
        lane = self._delivery.lanes.get(connection.name)
        if lane is None:
            state, detail = self._idle_state(connection)
            return {
                "state": state.value,
                "detail": detail,
                "position": None,
                "held": 0,
                "blocked_people": 0,
                "in_flight": 0,
            }
        status = lane.status()
        return {
            "state": _lane_state(status.state.value, status.blocked_people).value,
            "detail": status.detail,
            "position": status.position,
            "held": status.held,
            "blocked_people": status.blocked_people,
            "in_flight": status.in_flight,
        }

    def _idle_state(self, connection: Connection) -> tuple[ConnectionStatus, str]:
        """Why no lane runs for a connection."""
        try:
            registry.parse_settings(connection.destination, connection.settings)
        except (SettingsError, KeyError) as exc:
            return ConnectionStatus.MISCONFIGURED, settings_error_text(exc)
        if not connection.enabled:
            return ConnectionStatus.PAUSED, "paused by a user"
        if not self._delivers:
            return ConnectionStatus.STOPPED, "this process does not deliver (--role ingest)"
        return ConnectionStatus.STOPPED, ""

    def describe(self, connection: Connection) -> dict[str, str]:
        """The destination's title and its one-line description of these settings, for pages;
        the settings' own words when they no longer validate."""
        try:
            destination = registry.get(connection.destination)
        except KeyError:
            return {"title": connection.destination, "line": ""}
        try:
            line = destination.describe(parse_settings(destination, connection.settings))
        except SettingsError:
            line = ""
        return {"title": destination.title, "line": line}

    def validate(self, destination: Destination, settings: dict[str, Any]) -> Any:
        """The parsed settings struct, or a field-named `ManagementError`."""
        try:
            return parse_settings(destination, settings)
        except SettingsError as exc:
            raise settings_error(exc) from None

    def normalise(self, destination: Destination, settings: dict[str, Any]) -> dict[str, Any]:
        """The given settings as their typed, cleaned values ("30" from a form becomes 30).

        Only the keys given are kept: a setting left out follows the destination's default,
        even if that default changes in a later version.
        """
        parsed = msgspec.to_builtins(self.validate(destination, settings))
        return {key: parsed[key] for key in settings if key in parsed}

    async def _check_sources(self, sources: list[str]) -> None:
        known = {s.name for s in await self._store.list_sources()}
        for source in sources:
            if source not in known:
                raise invalid("sources", f"sources: no source named {source!r}")

    async def create(
        self,
        name: str,
        destination: str,
        settings: dict[str, Any],
        sources: list[str],
        *,
        enabled: bool = True,
        rate_limit: float | None = None,
        deliver_history: bool = False,
    ) -> Connection:
        """Save a new connection and start its lane at once.

        A new connection starts at the log's head (like adding a destination in Segment: new
        calls only), unless `deliver_history` asks for everything still retained.
        """
        name = name.strip()
        if not valid_name(name):
            raise invalid("name", f"name: use {NAME_RULE}")
        if name in RESERVED:
            raise invalid("name", f"name: {name!r} is reserved by the dashboard; choose another")
        if await self._store.get_connection(name) is not None:
            raise ManagementError(
                409,
                "name_taken",
                f"a connection named {name!r} already exists; connection names are unique,"
                " so choose another name (or edit the existing connection)",
                "name",
            )
        found = destination_named(destination)
        normalised = self.normalise(found, settings)
        await self._check_sources(sources)
        connection = Connection(
            name=name,
            destination=destination,
            settings=normalised,
            sources=list(sources),
            enabled=enabled,
            rate_limit=rate_limit,
        )
        # A connection of the same name may have existed before: place it, don't inherit.
        await self._delivery.place_new(name, deliver_history=deliver_history)
        await self._store.put_connection(connection)
        await self._apply(connection)
        return await self.get(name)

    async def update(
        self,
        name: str,
        *,
        settings: dict[str, Any] | None = None,
        sources: list[str] | None = None,
        enabled: bool | None = None,
        rate_limit: float | None = None,
        set_rate_limit: bool = False,
    ) -> Connection:
        """Change a connection and restart its lane with the new settings (position kept)."""
        connection = await self.get(name)
        found = destination_named(connection.destination)
        if settings is not None:
            merged = self._with_stored_secrets(found, settings, connection)
            connection.settings = self.normalise(found, merged)
        if sources is not None:
            await self._check_sources(sources)
            connection.sources = list(sources)
        if enabled is not None:
            connection.enabled = enabled
        if set_rate_limit:
            connection.rate_limit = rate_limit
        await self._store.put_connection(connection)
        await self._apply(connection)
        return await self.get(name)

    async def delete(self, name: str) -> None:
        await self.get(name)
        await self._delivery.remove(name)
        await self._store.delete_connection(name)
        await self._store.forget_connection(name)

    async def set_enabled(self, name: str, enabled: bool) -> Connection:
        """Pause or resume: the backlog stays in the log while paused."""
        connection = await self.get(name)
        connection.enabled = enabled
        await self._store.put_connection(connection)
        lane = self._delivery.lanes.get(name)
        if lane is None:
            await self._apply(connection)
        elif enabled:
            lane.resume()
        else:
            lane.pause()
        logger.info("connection %s %s", name, "resumed" if enabled else "paused")
        return connection

    async def check(
        self, destination: str, settings: dict[str, Any], stored_from: str | None = None
    ) -> CheckResult:
        """Ask the destination whether these credentials work, without saving anything.

        `stored_from` names a saved connection whose secrets fill in those left empty, so an
        edit form can test a changed region without the key being typed again.
        """
        found = destination_named(destination)
        if stored_from is not None:
            stored = await self.get(stored_from)
            if stored.destination != found.name:
                raise invalid(
                    "stored_from",
                    f"stored_from: {stored_from!r} is a {stored.destination} connection,"
                    f" not {found.name}",
                )
            settings = self._with_stored_secrets(found, settings, stored)
        parsed = self.validate(found, settings)
        if hasattr(parsed, "request_timeout"):
            parsed.request_timeout = min(parsed.request_timeout, CHECK_TIMEOUT)
        return await ask_destination(found, parsed, CHECK_TIMEOUT)

    async def check_saved(self, name: str, timeout: float) -> CheckResult:
        """Ask the destination whether a saved connection's credentials work, as stored.

        For the command line, which words the failures itself: a 404 `ManagementError` when
        there is no such connection; the registry's `UnknownDestination` or a `SettingsError`
        when the stored settings no longer fit. A terminal waits `timeout` seconds, longer
        than a form does.
        """
        connection = await self.get(name)
        destination = registry.get(connection.destination)
        settings = registry.parse_settings(destination.name, connection.settings)
        return await ask_destination(destination, settings, timeout)

    def _with_stored_secrets(
        self, destination: Destination, settings: dict[str, Any], stored: Connection
    ) -> dict[str, Any]:
        """`settings` with the secrets left empty (or masked) taken from `stored`, provided
        every address setting is unchanged; otherwise a 422 naming the secret to type again."""
        merged = keep_stored_secrets(destination, settings, stored.settings)
        kept = sorted(k for k in destination.secret_fields if merged.get(k) != settings.get(k))
        if kept and (changed := self._changed_addresses(destination, merged, stored.settings)):
            raise secret_needed(destination, kept[0], changed)
        return merged

    def _changed_addresses(
        self, destination: Destination, settings: dict[str, Any], stored: dict[str, Any]
    ) -> list[str]:
        """The address settings whose validated value differs from the stored one (compared
        after validation, so `http://x/` and `http://x` are one address); all of them when
        the stored settings no longer validate."""
        new = self.validate(destination, settings)
        try:
            old: Any = parse_settings(destination, stored)
        except SettingsError:
            return sorted(destination.address_fields)
        return sorted(
            field
            for field in destination.address_fields
            if getattr(new, field, None) != getattr(old, field, None)
        )

    async def overview(self, name: str, window: str) -> Overview:
        """The connection's delivery overview over `window` (`overview.WINDOWS`)."""
        return await overview(self._store, name, window)

    async def restart_fed_by(self, source: str) -> None:
        """Restart the lanes of the connections a (renamed) source feeds."""
        for connection in await self._store.list_connections():
            if source in connection.sources:
                await self._apply(connection)

    async def _apply(self, connection: Connection) -> None:
        if self._delivers:
            await self._delivery.apply(connection)
