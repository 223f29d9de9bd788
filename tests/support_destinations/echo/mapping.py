"""One call, one line: what the echo destination writes for a message."""

from __future__ import annotations

from typing import Any

from turnout.destinations.base import MapResult
from turnout.spec.message import Message

from .settings import EchoSettings


def map_message(message: Message, settings: EchoSettings) -> MapResult:
    event = message.event or message.name or str(message.type)
    line: dict[str, Any] = {
        "type": str(message.type),
        "messageId": message.message_id,
        "event": event.upper() if settings.uppercase else event,
    }
    if settings.style == "full":
        line["userId"] = message.user_id
    return MapResult(operations=[line])
