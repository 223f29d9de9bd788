"""The echo destination as the delivery lane sees it: settings, mapping, client."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from turnout.destinations.base import MapResult, RequestGate, SettingField
from turnout.spec.message import Message

from .client import EchoClient
from .mapping import map_message
from .settings import EchoSettings


class Echo:
    name: ClassVar[str] = "echo"
    title: ClassVar[str] = "Echo file"
    settings_type: ClassVar[type[msgspec.Struct]] = EchoSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"token"})
    address_fields: ClassVar[frozenset[str]] = frozenset({"path"})
    default_rate_limit: ClassVar[float] = 25.0
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("path", "File", "An absolute path; each call is appended.", required=True),
        SettingField("token", "Token", "Written with each line.", "secret", required=True),
        SettingField("labels", "Labels", "Added to each line.", "table"),
        SettingField(
            "style",
            "Style",
            "How much of a call to write.",
            "choice",
            "short",
            choices=("short", "full"),
        ),
        SettingField("uppercase", "Uppercase", "Event names in capitals.", "boolean", False),
        SettingField("batch_size", "Batch size", "Lines per write.", "number", 10, advanced=True),
    )

    def describe(self, settings: Any) -> str:
        return f"Echo to {settings.path}"

    def map(self, message: Message, settings: Any) -> MapResult:
        return map_message(message, settings)

    def client(self, settings: Any, gate: RequestGate) -> EchoClient:
        return EchoClient(settings, gate)
