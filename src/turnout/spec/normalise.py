"""Turning a decoded call into the call to store: validate, fill, correct the clock.

Every rule here is from the Segment spec, the contract every tracking SDK speaks:
- a call needs `userId` or `anonymousId`; track needs `event`, group `groupId`, alias `previousId`;
- `messageId` is generated when missing and may be at most 100 characters;
- `timestamp = receivedAt - (sentAt - originalTimestamp)` corrects the device's clock skew; a
  `timestamp` without `originalTimestamp` (segment-python sends it so) counts as the original;
- `context.ip` comes from the request unless the caller gave one;
- batch-level `context` and `integrations` are merged into each item (the item's keys win).

It runs once per message on the hot path: the free-form parts stay raw below their top-level
keys, and a batch's clock correction is worked out once per request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from turnout.spec import timestamps
from turnout.spec.incoming import FreeForm, Incoming, InvalidMessage
from turnout.spec.message import CALL_TYPES, Message, decode

__all__ = ["InvalidMessage", "RequestFacts", "normalise", "now", "stored_message"]

MAX_MESSAGE_ID_LENGTH = 100  # Segment's documented limit
MAX_ID_LENGTH = 1000  # userId / anonymousId / groupId / previousId: no real id is longer

_encode = msgspec.json.encode
_KNOWN_TYPES = frozenset(CALL_TYPES)


@dataclass(slots=True)
class RequestFacts:
    """What the server knows about the request, shared by every message in it."""

    received_at: datetime
    ip: str | None
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    received_text: str = field(init=False)
    ip_raw: msgspec.Raw | None = field(init=False)
    _sent_at_text: str | None = field(init=False, default=None)
    _sent_at: datetime | None = field(init=False, default=None)
    _skew: timedelta = field(init=False, default=timedelta(0))

    def __post_init__(self) -> None:
        self.received_text = timestamps.iso(self.received_at)
        self.ip_raw = msgspec.Raw(_encode(self.ip)) if self.ip else None

    def sent_moment(self, text: str) -> datetime:
        """sentAt parsed once per request: a batch's items share it."""
        if text != self._sent_at_text:
            self._sent_at = timestamps.parse(text, "sentAt")
            self._sent_at_text = text
            self._skew = timestamps.skew(self.received_at, self._sent_at)
        assert self._sent_at is not None
        return self._sent_at

    def skew(self, sent_text: str) -> timedelta:
        """receivedAt - sentAt: what to add to a device time sent at `sent_text`."""
        self.sent_moment(sent_text)
        return self._skew


def normalise(call: Incoming, facts: RequestFacts, source: str, call_type: str | None) -> Incoming:
    """Validate one call and fill it in place into its stored form, or raise `InvalidMessage`.

    `call_type` is the route's (`/v1/track`); batch items carry their own `type`.
    """
    kind = call_type or call.type
    if kind not in _KNOWN_TYPES:
        if kind is None:
            raise InvalidMessage("missing_type", "type: required in each batch item")
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
    if call.group_id is not None or kind == "group":
        call.group_id = _as_id(call.group_id, "groupId")
        if kind == "group" and call.group_id is None:
            raise InvalidMessage("missing_group_id", "groupId: required for group")
    if call.previous_id is not None or kind == "alias":
        call.previous_id = _as_id(call.previous_id, "previousId")
        if kind == "alias" and (call.previous_id is None or user_id is None):
            raise InvalidMessage("missing_previous_id", "previousId and userId: required for alias")
    call.message_id = _as_id(call.message_id, "messageId", MAX_MESSAGE_ID_LENGTH) or str(
        uuid.uuid4()
    )
    _stamp(call, facts)
    call.context = _context(call.context, facts)
    if facts.integrations:
        call.integrations = {**facts.integrations, **(call.integrations or {})}
    call.write_key = None  # a credential: never stored
    call.source = source
    return call


def _stamp(call: Incoming, facts: RequestFacts) -> None:
    call.received_at = facts.received_text
    call.sent_at = sent_text = call.sent_at if call.sent_at is not None else facts.sent_at
    original_text = call.original_timestamp
    if original_text is None:
        original_text = call.timestamp
    elif call.timestamp is not None:  # replaced below, but a malformed one is still refused
        timestamps.parse(call.timestamp, "timestamp")
    if original_text is None:
        if sent_text is not None:
            facts.sent_moment(sent_text)  # a malformed sentAt is refused all the same
        call.timestamp = facts.received_text
        return
    call.original_timestamp = original_text
    moment = timestamps.parse(original_text, "originalTimestamp")
    if sent_text is not None:  # on the server's clock
        moment = timestamps.shifted(moment, facts.skew(sent_text))
    call.timestamp = timestamps.iso(moment)


def _as_id(value: str | int | float | None, name: str, limit: int = MAX_ID_LENGTH) -> str | None:
    if value.__class__ is str and 0 < len(value) <= limit:
        return value
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


def _context(context: FreeForm, facts: RequestFacts) -> FreeForm:
    if facts.context:  # a batch-level context: the item's own keys win
        context = {**facts.context, **(context or {})}
    if facts.ip_raw is not None:
        if context is None:
            return {"ip": facts.ip_raw}
        if "ip" not in context:
            context["ip"] = facts.ip_raw
    return context


def stored_message(call: Incoming) -> Message:
    """The `Message` a normalised call becomes once stored (for the tap and for tests)."""
    return decode(_encode(call))


def now() -> datetime:
    return datetime.now(UTC)
