"""The contract every destination keeps, so the delivery lane can drive any of them.

A destination is three things: a settings type (a msgspec Struct, secrets named), a pure `map`
from one message to operations, and a client that sends operations and classifies each result.
The lane never looks inside an operation; it only batches them, sends them, and records outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import msgspec

from turnout.spec.message import Message


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


class Destination(Protocol):
    """A destination plugin, registered by `name` in `turnout.destinations.registry`."""

    name: ClassVar[str]
    title: ClassVar[str]
    settings_type: ClassVar[type[msgspec.Struct]]
    secret_fields: ClassVar[frozenset[str]]
    default_rate_limit: ClassVar[float]  # requests per second

    def map(self, message: Message, settings: Any) -> MapResult: ...

    def client(self, settings: Any, gate: RequestGate) -> DestinationClient: ...
