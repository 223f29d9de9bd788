"""Message to webhook call: the call as stored, unless its `integrations` object turns it off.

A webhook receives the Segment-spec message exactly as Turnout keeps it, so there is nothing to
reshape; mapping only decides whether the call goes at all.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from turnout.destinations.base import MapResult
from turnout.destinations.integrations import filtered_by_integrations, own_keys
from turnout.destinations.webhook.settings import WebhookSettings
from turnout.spec import message as spec_message
from turnout.spec.message import Message

# `integrations` keys that address this destination, compared without case or punctuation:
# Segment's "Webhooks" and the singular "Webhook".
_OWN_KEYS = own_keys("Webhook", "Webhooks")


class WebhookCall(msgspec.Struct, frozen=True):
    """One message to post. A Struct, so the lane can show it (the debugger) as it is."""

    message_id: str
    message: Message

    def body(self) -> bytes:
        """The message as stored: Segment-spec JSON, camelCase keys."""
        return spec_message.encode(self.message)


class DeleteCall(msgspec.Struct, frozen=True):
    """A privacy deletion, posted like a call: `{"type": "delete", "userId", "messageId",
    "timestamp"}`, signed as every call is. The `messageId` is derived from the request's id and
    the person, so a receiver can tell a re-send from a new request."""

    message_id: str
    user_id: str
    timestamp: str

    @classmethod
    def of(cls, user_id: str, request_id: str) -> DeleteCall:
        person = hashlib.sha256(user_id.encode()).hexdigest()[:16]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return cls(f"{request_id}-{person}", user_id, now)

    def body(self) -> bytes:
        return msgspec.json.encode(
            {
                "type": "delete",
                "userId": self.user_id,
                "messageId": self.message_id,
                "timestamp": self.timestamp,
            }
        )


def map_message(message: Message, settings: WebhookSettings) -> MapResult:
    """The one call to post for a message, or why it is skipped."""
    rule = filtered_by_integrations(message.integrations, _OWN_KEYS, "webhooks", "Webhooks")
    if rule is not None:
        return MapResult(filtered=rule)
    return MapResult(operations=[WebhookCall(message.message_id, message)])

