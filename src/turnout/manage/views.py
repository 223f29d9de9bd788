"""What leaves the process about stored things: plain, JSON-ready dicts with secrets masked.

Every API answer and every dashboard page is built from these, so masking happens in one place.
"""

from __future__ import annotations

import json
from typing import Any

from turnout.destinations import registry
from turnout.destinations.base import Destination
from turnout.history import PersonCalls, StoredCall, call_label
from turnout.store.models import Connection, DeadLetter, DeliveryRecord, Reject, Source
from turnout.store.secrets import each_secret, mask

PAYLOAD_PREVIEW = 20_000  # characters of a stored payload shown in one answer


def secret_fields(destination: str) -> frozenset[str]:
    try:
        found: Destination = registry.get(destination)
    except KeyError:
        return frozenset()
    return found.secret_fields


def masked_settings(connection: Connection) -> dict[str, Any]:
    return each_secret(connection.settings, secret_fields(connection.destination), mask)


def source_view(source: Source) -> dict[str, Any]:
    return {"name": source.name, "write_key": source.write_key, "created_at": source.created_at}


def connection_view(connection: Connection, status: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": connection.name,
        "destination": connection.destination,
        "sources": connection.sources,
        "enabled": connection.enabled,
        "rate_limit": connection.rate_limit,
        "origin": connection.origin,
        "updated_at": connection.updated_at,
        "settings": masked_settings(connection),
        "status": status,
    }


def payload_json(payload: bytes | str) -> Any:
    """A stored message as JSON when it parses, else its text (cut to a readable size)."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    try:
        return json.loads(text)
    except ValueError:
        return text[:PAYLOAD_PREVIEW]


def dead_letter_view(letter: DeadLetter, *, with_payload: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": letter.id,
        "connection": letter.connection,
        "message_id": letter.message_id,
        "person": letter.person,
        "reason": letter.reason,
        "request": letter.request,
        "response": letter.response,
        "created_at": letter.created_at,
        "replayed_at": letter.replayed_at,
    }
    if with_payload:
        view["payload"] = payload_json(letter.payload)
    return view


def delivery_view(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "connection": record.connection,
        "fate": record.fate.value,
        "detail": record.detail,
        "attempts": record.attempts,
        "request": record.request,
        "response": record.response,
        "updated_at": record.updated_at,
        "playbook_revision": record.playbook_revision,
    }


def stored_call_view(call: StoredCall) -> dict[str, Any]:
    """A call from the log with every connection's record of it (`deliveries` empty: pending)."""
    return {
        "offset": call.offset,
        "received_at": call.appended_at,
        "message_id": call.message_id,
        "label": call_label(call.message),
        "message": call.message,
        "deliveries": [delivery_view(r) for r in call.fates],
    }


def person_view(found: PersonCalls) -> dict[str, Any]:
    return {
        "identity": found.identity,
        "id": found.value,
        "calls": [stored_call_view(call) for call in found.calls],
        "more_after": found.more_after,
    }


def reject_view(reject: Reject) -> dict[str, Any]:
    return {
        "id": reject.id,
        "source": reject.source,
        "code": reject.code,
        "message": reject.message,
        "payload": reject.payload,
        "created_at": reject.created_at,
    }
