"""The contract every destination keeps, so the delivery lane can drive any of them.

A destination is three things: a settings type (a msgspec Struct, secrets named), a pure `map`
from one message to operations, and a client that sends operations and classifies each result.
The lane never looks inside an operation; it only batches them, sends them, and records outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from turnout.spec.message import Message
from turnout.validation import field_message


@dataclass(slots=True)
class MapResult:
    """What a destination makes of one message.

    Exactly one of these holds: `operations` to send; `filtered` (a rule said skip it, e.g. the
    integrations object); `rejected` (it can never be delivered, e.g. an id over the limit; it is
    dead-lettered with this reason). `adjustments` lists what was cut to fit limits.
    """

    operations: list[Any] = field(default_factory=list)
    filtered: str | None = None
    rejected: str | None = None
    adjustments: list[str] = field(default_factory=list)


class Status(StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient: try again after `retry_after` (or the lane's backoff)
    PERMANENT = "permanent"  # will never succeed as sent: dead-letter with the response
    AUTH = "auth"  # credentials rejected: pause the connection, keep the backlog


@dataclass(slots=True)
class SendResult:
    """The classified outcome of sending one operation."""

    status: Status
    reason: str = ""
    retry_after: float | None = None
    request: str = ""  # a summary of what was sent (method, url, body), secrets excluded
    response: str = ""  # status line and body as received


@dataclass(slots=True)
class CheckResult:
    """The answer to "do these credentials work?" for the dashboard and the CLI."""

    ok: bool
    message: str
    warnings: list[str] = field(default_factory=list)


FieldKind = Literal["text", "secret", "number", "choice", "boolean", "url", "table"]


@dataclass(frozen=True, slots=True)
class SettingField:
    """One settings field as a form shows it: the wording a settings struct cannot carry.

    The struct stays the authority on types, bounds and validation; this says how to present a
    field to a person. `kind` picks the input: "secret" is write-only and shown masked, "choice"
    offers `choices`, "table" is a set of name = value pairs (its values are secret when the
    field is in the destination's `secret_fields`). `advanced` fields sit behind a disclosure.
    """

    name: str
    label: str
    help: str
    kind: FieldKind = "text"
    default: Any = None
    advanced: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False


class ConnectionStatus(StrEnum):
    """Where a connection stands, in words every page and API answer shares.

    Pages branch on these values (badge, banner, what to offer: "Fix the settings", "Resume"),
    never on the text of a reason, so a destination's wording can change without breaking one.
    """

    OK = "ok"  # delivering: the last sends went through
    RETRYING = "retrying"  # running, but the destination fails transiently: messages wait to retry
    # The destination refuses the connection itself (credentials, or an address/region that
    # answers "not here"): delivery is on hold, the backlog kept, probed now and then.
    CREDENTIALS_REJECTED = "credentials_rejected"
    # The saved settings do not fit the destination (or name an unknown one): no lane runs
    # until someone edits them.
    MISCONFIGURED = "misconfigured"
    # Switched off by a person (`enabled = false`, Pause): nothing is sent, the backlog stays in
    # the log and is delivered on resume. A connection is never "disabled" in a way that drops
    # calls, so this one word covers both.
    PAUSED = "paused"
    STOPPED = "stopped"  # no lane runs in this process (shutting down, or `--role ingest`)


class DestinationClient(Protocol):
    """Sends operations; one instance per connection, owning its HTTP connection pool."""

    max_batch: int  # operations the lane may hand to one `send` call

    async def send(self, operations: Sequence[Any]) -> list[SendResult]:
        """Send operations (in order) and return one result per operation, in the same order."""
        ...

    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None: ...


class RequestGate(Protocol):
    """The connection's rate limit, owned by the delivery lane and shared by its client.

    The client makes every HTTP request inside `async with gate.slot():` and calls `slow_down`
    when the destination answers 429, so the limit holds across every request the connection
    makes. The slot lasts until the answer: the gate counts a request until it has arrived.
    """

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    def slow_down(self, retry_after: float | None) -> None: ...


class SettingsError(ValueError):
    """A connection's settings do not fit its destination; the message names the field."""


class Unlimited:
    """A gate that never waits: a one-off request (a credentials check) needs no rate limit."""

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        yield

    def slow_down(self, retry_after: float | None) -> None:
        return None


class Destination(Protocol):
    """A destination plugin, registered by `name` in `turnout.destinations.registry`."""

    name: ClassVar[str]
    title: ClassVar[str]
    settings_type: ClassVar[type[msgspec.Struct]]
    # Settings never shown unmasked and sealed at rest. A field holding a table (e.g. HTTP
    # headers) is a secret table: each of its values is secret, its names are not.
    secret_fields: ClassVar[frozenset[str]]
    # Settings a user may point anywhere that decide where requests, and so the secrets, go (a
    # replacement base URL, a webhook's address). A stored secret is reused (a form leaving it
    # blank) only while these keep their stored values: a new address needs the secret typed
    # again, so nobody can send a saved key to an address of their choosing. Settings choosing
    # among the destination's own hosts (a region) are not among them.
    address_fields: ClassVar[frozenset[str]]
    default_rate_limit: ClassVar[float]  # requests per second
    fields: ClassVar[tuple[SettingField, ...]]  # every settings field, in form order

    def map(self, message: Message, settings: Any) -> MapResult: ...

    def client(self, settings: Any, gate: RequestGate) -> DestinationClient: ...

    def describe(self, settings: Any) -> str:
        """One line that tells connections apart on a page ("Customer.io, EU region");
        never a secret."""
        ...


PrivacyAction = Literal["delete", "suppress", "unsuppress", "suppress_and_delete"]


class PrivacyAware(Protocol):
    """What a destination may add to the contract: how it is told about a privacy request.

    `privacy_operations` answers the operations that carry out `action` for one person (sent by
    the lane, in the person's order, through the destination's own client, retried like any
    other), or None when the destination has no such notion (nothing is sent, and the request
    says `not_supported` for the connection). `request_id` names the request, for destinations
    that need an id per message. Destinations without the method are treated as answering None.
    """

    def privacy_operations(
        self, action: PrivacyAction, user_id: str, settings: Any, *, request_id: str
    ) -> list[Any] | None: ...


def privacy_operations(
    destination: Destination, action: str, user_id: str, settings: Any, request_id: str
) -> list[Any] | None:
    """The destination's operations for a privacy request about `user_id` (see `PrivacyAware`);
    None when it has no such notion."""
    method = getattr(destination, "privacy_operations", None)
    if method is None:
        return None
    result: list[Any] | None = method(action, user_id, settings, request_id=request_id)
    return result


async def run_check(client: DestinationClient, timeout: float) -> CheckResult:
    """`client.check()`, answered within `timeout` seconds whatever the destination does.

    A check answers a person waiting at a form or a terminal: a destination that accepts the
    connection and then never answers must not hold them longer than the contract allows.
    """
    try:
        async with asyncio.timeout(timeout) as scope:
            return await client.check()
    except TimeoutError:
        if not scope.expired():
            raise
        return CheckResult(
            False, f"no answer within {timeout:g}s: the destination did not respond in time"
        )


def parse_settings(destination: Destination, settings: dict[str, Any]) -> Any:
    """`settings` as the destination's settings struct, or a `SettingsError` naming the field.

    Lax on types (`strict=False`): a form sends "30" for a number, and every door (file, API,
    dashboard) must accept exactly the same settings.
    """
    try:
        return msgspec.convert(settings, destination.settings_type, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"settings: {field_message(exc)}") from None
