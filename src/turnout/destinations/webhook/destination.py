"""The webhook destination as the delivery lane sees it: settings, mapping, client."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import msgspec

from turnout.destinations.base import MapResult, RequestGate, SettingField
from turnout.destinations.http import REQUEST_TIMEOUT_FIELD, public_url
from turnout.destinations.webhook.client import WebhookClient
from turnout.destinations.webhook.mapping import DeleteCall, map_message
from turnout.destinations.webhook.settings import BATCH_SIZE_MAX, WebhookSettings
from turnout.spec.message import Message


class Webhook:
    """Every call POSTed as Segment-spec JSON to one address, signed the Standard Webhooks way."""

    name: ClassVar[str] = "webhook"
    title: ClassVar[str] = "Webhook"
    settings_type: ClassVar[type[msgspec.Struct]] = WebhookSettings
    # `headers` is a secret table: each value is secret (Authorization, API keys), names are not.
    secret_fields: ClassVar[frozenset[str]] = frozenset({"headers", "signing_secret"})
    # The stored headers and secret go only to the address they were saved for.
    address_fields: ClassVar[frozenset[str]] = frozenset({"url"})
    # A receiver of unknown capacity gets a modest default; `rate_limit` raises it.
    default_rate_limit: ClassVar[float] = 50.0
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "url",
            "URL",
            "Where every call is POSTed (http:// or https://). Redirects are not followed.",
            "url",
            required=True,
        ),
        SettingField(
            "headers",
            "Headers",
            "Sent with every request, e.g. Authorization. Values are stored encrypted.",
            "table",
        ),
        SettingField(
            "signing_secret",
            "Signing secret",
            "whsec_… (Standard Webhooks). Requests carry a webhook-signature the receiver checks.",
            "secret",
        ),
        SettingField(
            "batch_size",
            "Batch size",
            f'1: one call per request. 2 to {BATCH_SIZE_MAX}: {{"batch": [...]}} per request.',
            "number",
            1,
            advanced=True,
        ),
        REQUEST_TIMEOUT_FIELD,
    )

    def describe(self, settings: Any) -> str:
        """The address calls go to (without a query, where tokens hide)."""
        return public_url(settings.url)

    def map(self, message: Message, settings: Any) -> MapResult:
        return map_message(message, settings)

    def privacy_operations(
        self, action: str, user_id: str, settings: Any, *, request_id: str
    ) -> list[Any] | None:
        """A deletion is posted as a `delete` message (see `DeleteCall`); a webhook has no
        notion of suppression, so suppress and unsuppress send nothing."""
        if action in ("delete", "suppress_and_delete"):
            return [DeleteCall.of(user_id, request_id)]
        return None

    def client(
        self,
        settings: Any,
        gate: RequestGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> WebhookClient:
        return WebhookClient(settings, gate, transport=transport)
