"""The typed tracking-spec message that flows from ingest through the log to destinations.

Field names on the wire are Segment's camelCase; in Python they are snake_case (msgspec renames).
Free-form parts of the spec (`traits`, `properties`, `context`, `integrations`) stay plain dicts:
the spec lets users put anything there, and destinations read only the keys they understand.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

CallType = Literal["identify", "track", "page", "screen", "group", "alias"]
CALL_TYPES: tuple[str, ...] = ("identify", "track", "page", "screen", "group", "alias")


class Message(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """One normalised call, as stored in the log.

    After `spec.normalise` every stored message has `message_id`, `received_at` and `timestamp`
    (ISO-8601, UTC, millisecond precision) and at least one of `user_id` / `anonymous_id`.
    """

    type: CallType
    message_id: str
    received_at: str
    timestamp: str
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    traits: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    integrations: dict[str, Any] = msgspec.field(default_factory=dict)
    sent_at: str | None = None
    original_timestamp: str | None = None
    # The source (by name) the write key belonged to; used to route to connections.
    source: str = ""

    @property
    def person_key(self) -> str:
        """The ordering key: one person's calls are delivered in the order received."""
        return person_key(self.user_id, self.anonymous_id)


def person_key(user_id: str | None, anonymous_id: str | None) -> str:
    """Who a call is about, as the log partitions and the lanes order by: the `userId`, else
    the `anonymousId` (ingest refuses a call with neither). A visitor's calls from before they
    were identified keep their own order, apart from the person's later ones."""
    return user_id or anonymous_id or ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes) -> Message:
    return _decoder.decode(payload)
