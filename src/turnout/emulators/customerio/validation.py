"""The synchronous checks Customer.io makes before answering (ref §6.1, §12.4).

Each check returns :class:`Violation` values naming the field and the limit. v1 shows only the
message; v2 shows field, reason and message. Three texts were seen on the live API and are kept
verbatim (``value for attribute …``, ``id attribute and identifier …``, ``event name …``); the
rest are ours, worded the same way.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .identifiers import is_ulid

ID_LIMIT = 150  # bytes, person id / object id
ATTRIBUTE_NAME_LIMIT = 150  # bytes
ATTRIBUTE_VALUE_LIMIT = 1000  # bytes
ATTRIBUTE_COUNT_LIMIT = 300  # unique attributes per identify call
EVENT_NAME_LIMIT = 100  # bytes, includes page URLs used as names
EVENT_DATA_LIMIT = 100_000  # bytes of JSON
DEVICE_PLATFORMS = ("ios", "android")

# Keys of an identify body that steer the call rather than set an attribute.
CONTROL_KEYS = frozenset({"_update", "_timestamp", "cio_relationships", "anonymous_id", "id"})

Reason = Literal["invalid", "required"]


class Violation(msgspec.Struct, frozen=True):
    field: str
    reason: Reason
    message: str


def byte_size(value: Any) -> int:
    """Size of a value as Customer.io counts it: UTF-8 bytes of a string, else its JSON."""
    if isinstance(value, str):
        # Up to 4 bytes per character: short strings cannot exceed any limit; skip encoding.
        return len(value) if len(value) * 4 <= ATTRIBUTE_VALUE_LIMIT else len(value.encode())
    if value is None or isinstance(value, bool | int | float):
        return 8
    return len(msgspec.json.encode(value))


def check_identifier(field: str, value: Any, what: str = "identifier") -> list[Violation]:
    """A person id (path or body) must be a non-empty string or number of at most 150 bytes."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return [Violation(field, "invalid", f"{what} must be a string")]
    text = value if isinstance(value, str) else str(value)
    if not text:
        return [Violation(field, "required", f"{what} cannot be blank")]
    if len(text.encode()) > ID_LIMIT:
        return [Violation(field, "invalid", f"{what} cannot be longer than {ID_LIMIT} bytes")]
    return []


def check_timestamp(field: str, value: Any) -> list[Violation]:
    """Timestamps are unix seconds (ref §9); decimals are accepted, strings are not."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return []
    return [Violation(field, "invalid", f"{field} must be a unix timestamp in seconds")]


def check_attributes(attributes: dict[str, Any], prefix: str) -> list[Violation]:
    """Name and value sizes of every attribute, then the count, in the order Customer.io lists."""
    out: list[Violation] = []
    count = 0
    for name, value in attributes.items():
        if name in CONTROL_KEYS:
            continue
        count += 1
        field = f"{prefix}{name}"
        if len(name.encode()) > ATTRIBUTE_NAME_LIMIT:
            out.append(Violation(
                field, "invalid",
                f"attribute name '{name[:40]}...' cannot be longer than "
                f"{ATTRIBUTE_NAME_LIMIT} bytes",
            ))
        if name in ("cio_relationships", "cio_subscription_preferences"):
            continue
        if byte_size(value) > ATTRIBUTE_VALUE_LIMIT:
            out.append(Violation(
                field, "invalid",
                f"value for attribute '{name}' cannot be longer than {ATTRIBUTE_VALUE_LIMIT} bytes",
            ))
    if count > ATTRIBUTE_COUNT_LIMIT:
        out.append(Violation(
            prefix.rstrip(".") or "attributes", "invalid",
            f"cannot set more than {ATTRIBUTE_COUNT_LIMIT} attributes in one request (got {count})",
        ))
    return out


def check_event(
    name: Any, data: Any, dedupe_id: Any, timestamp: Any, data_field: str = "data"
) -> list[Violation]:
    """An event, page or screen: required name <= 100 bytes, data <= 100 KB, ULID id."""
    out: list[Violation] = []
    if not isinstance(name, str) or not name.strip():
        out.append(Violation("name", "required", "event name is required"))
    elif len(name.strip().encode()) > EVENT_NAME_LIMIT:
        out.append(Violation(
            "name", "invalid", f"event name cannot be longer than {EVENT_NAME_LIMIT} bytes"
        ))
    if data is not None:
        if not isinstance(data, dict):
            out.append(Violation(data_field, "invalid", f"event {data_field} must be an object"))
        elif data and len(msgspec.json.encode(data)) > EVENT_DATA_LIMIT:
            out.append(Violation(
                data_field, "invalid",
                f"event {data_field} cannot be longer than {EVENT_DATA_LIMIT} bytes",
            ))
    if dedupe_id is not None and not is_ulid(dedupe_id):
        out.append(Violation(
            "id", "invalid", "event id must be a ULID (26 Crockford base32 characters)"
        ))
    out.extend(check_timestamp("timestamp", timestamp))
    return out


def check_device(device: Any, token_key: str) -> list[Violation]:
    """A device needs its token (v1 ``id``, v2 ``token``) and an ios/android platform."""
    if not isinstance(device, dict):
        return [Violation("device", "required", "device is required")]
    out: list[Violation] = []
    token = device.get(token_key)
    if not isinstance(token, str) or not token:
        out.append(Violation(f"device.{token_key}", "required", f"device {token_key} is required"))
    platform = device.get("platform")
    if platform not in DEVICE_PLATFORMS:
        out.append(Violation(
            "device.platform", "required" if platform is None else "invalid",
            "device platform must be one of: " + ", ".join(DEVICE_PLATFORMS),
        ))
    last_used = device.get("last_used")
    if isinstance(last_used, str):
        # go-customerio sends last_used as a numeric string (ref §4.6).
        try:
            float(last_used)
        except ValueError:
            out.append(Violation(
                "device.last_used", "invalid",
                "device.last_used must be a unix timestamp in seconds",
            ))
    else:
        out.extend(check_timestamp("device.last_used", last_used))
    attributes = device.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        out.append(Violation("device.attributes", "invalid", "device attributes must be an object"))
    return out


def device_fields(
    device: dict[str, Any], token_key: str
) -> tuple[str, str | None, float | None, dict[str, Any]]:
    """Normalise the three device shapes clients send (ref §4.6) into (token, platform, last_used,
    attributes): node nests extras under ``attributes``, python/ruby put them beside ``id``, and go
    sends ``last_used`` as a string."""
    attributes = dict(device.get("attributes") or {})
    for key, value in device.items():
        if key not in (token_key, "platform", "last_used", "attributes"):
            attributes[key] = value
    last_used = device.get("last_used")
    return (
        str(device[token_key]),
        device.get("platform"),
        float(last_used) if last_used is not None else None,
        attributes,
    )
