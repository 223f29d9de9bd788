"""The Customer.io destination as the delivery lane sees it: settings, mapping, client."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import msgspec

from turnout.destinations.base import MapResult, RequestGate
from turnout.destinations.customerio.client import CustomerIOClient
from turnout.destinations.customerio.mapping import map_message
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.spec.message import Message


class CustomerIO:
    """Customer.io's Track API (v2 batch by default, v1 per call on request)."""

    name: ClassVar[str] = "customerio"
    title: ClassVar[str] = "Customer.io"
    settings_type: ClassVar[type[msgspec.Struct]] = CustomerIOSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_key"})
    # Customer.io's documented figure is 1000 requests/s (soft); older texts say 100/s. One v2
    # request carries up to `batch_size` operations, so 100 requests/s is ample and polite.
    default_rate_limit: ClassVar[float] = 100.0

    def map(self, message: Message, settings: Any) -> MapResult:
        return map_message(message, settings)

    def client(
        self,
        settings: Any,
        gate: RequestGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> CustomerIOClient:
        return CustomerIOClient(settings, gate, transport=transport)
