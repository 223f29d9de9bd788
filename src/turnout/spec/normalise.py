"""Turning raw tracking calls into stored `Message`s: validate, fill, correct the clock.

Every rule here is from the Segment spec, the contract every tracking SDK speaks:
- a call needs `userId` or `anonymousId`; track needs `event`, group `groupId`, alias `previousId`;
- `messageId` is generated when missing and may be at most 100 characters;
- `timestamp = receivedAt - (sentAt - originalTimestamp)` corrects the device's clock skew; a
  `timestamp` without `originalTimestamp` (segment-python sends it so) counts as the original;
- `context.ip` comes from the request unless the caller gave one;
- batch-level `context` and `integrations` are merged into each item (the item's keys win).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from turnout.spec.message import CALL_TYPES, Message

MAX_MESSAGE_ID_LENGTH = 100  # Segment's documented limit; longer ids are truncated by no SDK


class InvalidMessage(Exception):
    """A call that can never succeed as sent. `code` is stable; `message` names the field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Scalar = str | int | float | bool | None


class RawCall(msgspec.Struct, rename="camel", kw_only=True):
    """A tracking call as a client may send it: loosely typed where SDKs differ.

    Ids may arrive as numbers (several SDKs allow `userId: 123`); they are kept as strings.
    Unknown top-level fields are ignored.
    """

    type: str | None = None
    message_id: str | int | None = None
    user_id: str | int | float | None = None
    anonymous_id: str | int | float | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | int | float | None = None
    previous_id: str | int | float | None = None
    traits: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: str | None = None
    original_timestamp: str | None = None
    sent_at: str | None = None
    write_key: str | None = None


class RawBatch(msgspec.Struct, rename="camel", kw_only=True):
    """A `/v1/batch` body. Items stay raw so one bad item cannot spoil the rest."""

    batch: list[msgspec.Raw]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sent_at: str | None = None
    write_key: str | None = None


_call_decoder = msgspec.json.Decoder(RawCall)
_batch_decoder = msgspec.json.Decoder(RawBatch)


@dataclass(slots=True)
class RequestFacts:
    """What the server knows about the request, independent of any one message."""

    received_at: datetime
    ip: str | None
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


def decode_call(body: bytes | msgspec.Raw) -> RawCall:
    try:
        return _call_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidMessage("invalid_field", _field_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidMessage("invalid_json", f"body is not valid JSON: {exc}") from None


def decode_batch(body: bytes) -> RawBatch:
    try:
        return _batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidMessage("invalid_field", _field_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidMessage("invalid_json", f"body is not valid JSON: {exc}") from None


def _field_message(detail: str) -> str:
    """msgspec says "Expected `str`, got `int` - at `$.userId`": keep it, it names the field."""
    return detail.replace("$.", "", 1) if detail.count("$.") == 1 else detail


def _as_id(value: str | int | float | None, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidMessage("invalid_field", f"{field}: expected a string, got a boolean")
    text = value if isinstance(value, str) else _number_text(value)
    return text or None


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_time(value: str, field: str) -> datetime:
    """ISO-8601 as the SDKs write it (`Z`, offsets, fractions); naive times are UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMessage(
            "invalid_timestamp", f"{field}: {value[:40]!r} is not an ISO-8601 timestamp"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def corrected_timestamp(
    received_at: datetime, sent_at: datetime | None, original: datetime | None
) -> datetime:
    """The spec's clock-skew correction: the device's elapsed time, on the server's clock."""
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def normalise(raw: RawCall, facts: RequestFacts, source: str, call_type: str | None) -> Message:
    """Validate one call and return the message to store, or raise `InvalidMessage`."""
    kind = call_type or raw.type
    if kind is None:
        raise InvalidMessage("missing_type", "type: required in each batch item")
    if kind not in CALL_TYPES:
        raise InvalidMessage(
            "invalid_type", f"type: {kind[:40]!r} is not one of {', '.join(CALL_TYPES)}"
        )
    user_id = _as_id(raw.user_id, "userId")
    anonymous_id = _as_id(raw.anonymous_id, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidMessage("no_user_anon_id", "userId or anonymousId: one is required")
    for field, value in (("userId", user_id), ("anonymousId", anonymous_id)):
        if value is not None and len(value) > 1000:
            raise InvalidMessage("invalid_field", f"{field}: longer than 1000 characters")
    if kind == "track" and not raw.event:
        raise InvalidMessage("missing_event", "event: required for track")
    group_id = _as_id(raw.group_id, "groupId")
    if kind == "group" and group_id is None:
        raise InvalidMessage("missing_group_id", "groupId: required for group")
    previous_id = _as_id(raw.previous_id, "previousId")
    if kind == "alias" and (previous_id is None or user_id is None):
        raise InvalidMessage("missing_previous_id", "previousId and userId: required for alias")

    message_id = _as_id(raw.message_id, "messageId") or str(uuid.uuid4())
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage("invalid_field", "messageId: longer than 100 characters")

    sent_at_text = raw.sent_at or facts.sent_at
    sent_at = parse_time(sent_at_text, "sentAt") if sent_at_text else None
    original_text = raw.original_timestamp or raw.timestamp
    original = parse_time(original_text, "originalTimestamp") if original_text else None
    timestamp = corrected_timestamp(facts.received_at, sent_at, original)

    context = _merged(facts.context, raw.context)
    if facts.ip and "ip" not in context:
        context["ip"] = facts.ip
    return Message(
        type=kind,  # type: ignore[arg-type]  # checked against CALL_TYPES above
        message_id=message_id,
        received_at=format_time(facts.received_at),
        timestamp=format_time(timestamp),
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=raw.event,
        name=raw.name,
        category=raw.category,
        group_id=group_id,
        previous_id=previous_id,
        traits=raw.traits,
        properties=raw.properties,
        context=context,
        integrations=_merged(facts.integrations, raw.integrations),
        sent_at=sent_at_text,
        original_timestamp=original_text,
        source=source,
    )


def _merged(outer: dict[str, Any] | None, inner: dict[str, Any] | None) -> dict[str, Any]:
    if not outer:
        return dict(inner) if inner else {}
    merged = dict(outer)
    if inner:
        merged.update(inner)
    return merged


def now() -> datetime:
    return datetime.now(UTC)
