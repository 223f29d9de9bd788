"""The Customer.io destination as the delivery lane sees it: settings, mapping, client."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import msgspec

from turnout.destinations.base import MapResult, RequestGate, SettingField
from turnout.destinations.customerio.client import CustomerIOClient
from turnout.destinations.customerio.mapping import map_message
from turnout.destinations.customerio.operations import (
    DeletePerson,
    PersonRef,
    SuppressPerson,
    UnsuppressPerson,
)
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.destinations.http import REQUEST_TIMEOUT_FIELD
from turnout.spec.message import Message


class CustomerIO:
    """Customer.io's Track API (v2 batch by default, v1 per call on request)."""

    name: ClassVar[str] = "customerio"
    title: ClassVar[str] = "Customer.io"
    settings_type: ClassVar[type[msgspec.Struct]] = CustomerIOSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_key"})
    # `region` is not here: it chooses between Customer.io's own hosts.
    address_fields: ClassVar[frozenset[str]] = frozenset({"track_url"})
    # Customer.io's documented figure is 1000 requests/s (soft); older texts say 100/s. One v2
    # request carries up to `batch_size` operations, so 100 requests/s is ample and polite.
    default_rate_limit: ClassVar[float] = 100.0
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "site_id",
            "Site ID",
            "Workspace Settings > API Credentials > Track API keys.",
            required=True,
        ),
        SettingField(
            "api_key",
            "API key",
            "The Track API key. Stored encrypted; never shown again.",
            "secret",
            required=True,
        ),
        SettingField(
            "region",
            "Region",
            "The data centre of the workspace.",
            "choice",
            "us",
            choices=("us", "eu"),
        ),
        SettingField(
            "track_url",
            "Track API URL",
            "Replaces the region's URL (a proxy, the emulator). Leave empty for Customer.io.",
            "url",
            advanced=True,
        ),
        SettingField(
            "max_traits_per_identify",
            "Traits per identify",
            "More traits are sent as consecutive updates of the same person.",
            "number",
            30,
            advanced=True,
        ),
        SettingField(
            "convert_timestamps",
            "Convert timestamps",
            "ISO-8601 strings become unix seconds, so Customer.io date conditions work.",
            "boolean",
            True,
            advanced=True,
        ),
        SettingField(
            "object_type_id",
            "Object type ID",
            "The object type that group calls create or update.",
            default="1",
            advanced=True,
        ),
        SettingField(
            "api",
            "API",
            "v2 sends many operations per batch request; v1 one request per operation.",
            "choice",
            "v2",
            advanced=True,
            choices=("v2", "v1"),
        ),
        SettingField(
            "batch_size",
            "Batch size",
            "Operations per v2 batch request.",
            "number",
            100,
            advanced=True,
        ),
        REQUEST_TIMEOUT_FIELD,
    )

    def describe(self, settings: Any) -> str:
        """The region ("Customer.io, EU region"), and the address when `track_url` replaces it."""
        line = f"{self.title}, {settings.region.upper()} region"
        return f"{line}, via {settings.track_url}" if settings.track_url else line

    def map(self, message: Message, settings: Any) -> MapResult:
        return map_message(message, settings)

    def privacy_operations(
        self, action: str, user_id: str, settings: Any, *, request_id: str
    ) -> list[Any] | None:
        """The person's deletion or suppression in Customer.io: the operations the reserved
        events "User Deleted", "User Suppressed" and "User Unsuppressed" map to. Customer.io's
        suppression deletes the person too, so `suppress_and_delete` is one suppression."""
        person = PersonRef.classify(user_id)
        if action == "delete":
            return [DeletePerson(person=person)]
        if action in ("suppress", "suppress_and_delete"):
            return [SuppressPerson(person=person)]
        if action == "unsuppress":
            return [UnsuppressPerson(person=person)]
        return None

    def client(
        self,
        settings: Any,
        gate: RequestGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> CustomerIOClient:
        return CustomerIOClient(settings, gate, transport=transport)
