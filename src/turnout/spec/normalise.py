"""Turning a decoded call into the call to store: validate, fill, correct the clock.

Every rule here is from the Segment spec, the contract every tracking SDK speaks:
- a call needs `userId` or `anonymousId`; track needs `event`, group `groupId`, alias `previousId`;
- `messageId` is generated when missing and may be at most 100 characters;
- `timestamp = receivedAt - (sentAt - originalTimestamp)` corrects the device's clock skew; a
  `timestamp` without `originalTimestamp` (segment-python sends it so) counts as the original;
- `context.ip` comes from the request unless the caller gave one;
- batch-level `context` and `integrations` are merged into each item (the item's keys win).

It runs once per message on the hot path, so the free-form parts stay raw bytes: `context` is
only unpacked when a batch-level context must be merged in or an `"ip"` key may already be there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from turnout.spec import timestamps
from turnout.spec.incoming import EMPTY, Incoming, InvalidMessage
from turnout.spec.message import CALL_TYPES, Message, decode

__all__ = ["InvalidMessage", "RequestFacts", "normalise", "now", "stored_message"]

MAX_MESSAGE_ID_LENGTH = 100  # Segment's documented limit
MAX_ID_LENGTH = 1000  # userId / anonymousId / groupId / previousId: no real id is longer

_encode = msgspec.json.encode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(slots=True)
class RequestFacts:
    """What the server knows about the request, shared by every message in it."""

    received_at: datetime
    ip: str | None
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    received_text: str = field(init=False)
    ip_json: bytes = field(init=False)
    _sent_at_text: str | None = field(init=False, default=None)
    _sent_at: datetime | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.received_text = timestamps.iso(self.received_at)
        self.ip_json = _encode(self.ip) if self.ip else b""

    def sent_moment(self, text: str) -> datetime:
        """sentAt parsed once per request: a batch's items share it."""
        if text != self._sent_at_text:
            self._sent_at, self._sent_at_text = timestamps.parse(text, "sentAt"), text
        assert self._sent_at is not None
        return self._sent_at


def normalise(call: Incoming, facts: RequestFacts, source: str, call_type: str | None) -> Incoming:
    """Validate one call and fill it in place into its stored form, or raise `InvalidMessage`.

    `call_type` is the route's (`/v1/track`); batch items carry their own `type`.
    """
    kind = call_type or call.type
    if kind is None:
        raise InvalidMessage("missing_type", "type: required in each batch item")
    if kind not in CALL_TYPES:
        raise InvalidMessage(
            "invalid_type", f"type: {kind[:40]!r} is not one of {', '.join(CALL_TYPES)}"
        )
    call.type = kind
    call.user_id = user_id = _as_id(call.user_id, "userId")
    call.anonymous_id = anonymous_id = _as_id(call.anonymous_id, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidMessage("no_user_anon_id", "userId or anonymousId: one is required")
    if kind == "track" and not call.event:
        raise InvalidMessage("missing_event", "event: required for track")
    call.group_id = _as_id(call.group_id, "groupId")
    if kind == "group" and call.group_id is None:
        raise InvalidMessage("missing_group_id", "groupId: required for group")
    call.previous_id = _as_id(call.previous_id, "previousId")
    if kind == "alias" and (call.previous_id is None or user_id is None):
        raise InvalidMessage("missing_previous_id", "previousId and userId: required for alias")

    call.message_id = _as_id(call.message_id, "messageId", MAX_MESSAGE_ID_LENGTH) or str(
        uuid.uuid4()
    )

    _stamp(call, facts)
    call.traits = _object(call.traits, "traits")
    call.properties = _object(call.properties, "properties")
    call.context = _context(_object(call.context, "context"), facts)
    call.integrations = _merged(_object(call.integrations, "integrations"), facts.integrations)
    call.write_key = None  # a credential: never stored
    call.source = source
    return call


def _stamp(call: Incoming, facts: RequestFacts) -> None:
    call.received_at = facts.received_text
    call.sent_at = sent_text = call.sent_at if call.sent_at is not None else facts.sent_at
    sent_at = facts.sent_moment(sent_text) if sent_text is not None else None
    original_text = call.original_timestamp
    if original_text is None:
        original_text = call.timestamp
    elif call.timestamp is not None:  # replaced below, but a malformed one is still refused
        timestamps.parse(call.timestamp, "timestamp")
    if original_text is None:
        call.timestamp = facts.received_text
        return
    call.original_timestamp = original_text
    original = timestamps.parse(original_text, "originalTimestamp")
    call.timestamp = timestamps.iso(timestamps.corrected(facts.received_at, sent_at, original))


def _as_id(value: str | int | float | None, name: str, limit: int = MAX_ID_LENGTH) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        raise InvalidMessage("invalid_field", f"{name}: expected a string, got a boolean")
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    if len(text) > limit:
        raise InvalidMessage("invalid_field", f"{name}: longer than {limit} characters")
    return text or None


_KINDS = {ord("["): "an array", ord('"'): "a string", ord("t"): "a boolean", ord("f"): "a boolean"}


def _object(raw: msgspec.Raw, name: str) -> msgspec.Raw:
    """A free-form part must be an object; `null` counts as absent."""
    if raw is EMPTY:
        return raw
    first = memoryview(raw)[0]
    if first == ord("{"):
        return raw
    if first == ord("n"):
        return EMPTY
    raise InvalidMessage(
        "invalid_field", f"{name}: expected an object, got {_KINDS.get(first, 'a number')}"
    )


def _context(context: msgspec.Raw, facts: RequestFacts) -> msgspec.Raw:
    if facts.context:  # a batch-level context to merge: the rare, slow path
        merged = {**facts.context, **(_decode_dict(context) if context is not EMPTY else {})}
        if facts.ip and "ip" not in merged:
            merged["ip"] = facts.ip
        return msgspec.Raw(_encode(merged))
    if not facts.ip:
        return context
    if context is EMPTY:
        return msgspec.Raw(b'{"ip":' + facts.ip_json + b"}")
    text = bytes(context)
    if b'"ip"' in text and "ip" in _decode_dict(text):
        return context
    if text[1:].lstrip() == b"}":
        return msgspec.Raw(b'{"ip":' + facts.ip_json + b"}")
    return msgspec.Raw(b'{"ip":' + facts.ip_json + b"," + text[1:])


def _merged(inner: msgspec.Raw, outer: dict[str, Any] | None) -> msgspec.Raw:
    if not outer:
        return inner
    return msgspec.Raw(_encode({**outer, **(_decode_dict(inner) if inner is not EMPTY else {})}))


def stored_message(call: Incoming) -> Message:
    """The `Message` a normalised call becomes once stored (for the tap and for tests)."""
    return decode(_encode(call))


def now() -> datetime:
    return datetime.now(UTC)
