"""The records of the read model: people, their activity and devices, objects, merges.

Kept apart from :mod:`state` (which applies operations) so tests can import and inspect them
without the logic. Attribute values are kept as the JSON values received; Customer.io's App API
would show them as strings (ref §4.2), which :meth:`Person.attributes_as_strings` reproduces.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

ObjectKey = tuple[str, str]  # (object_type_id, object_id or "anon:" + anonymous_id)


def as_string(value: Any) -> str:
    """How the App API reads a stored value back: ``true`` → ``"true"``, ``1`` → ``"1"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def truthy(value: Any) -> bool:
    """Customer.io's reading of ``unsubscribed``: any case of true, 1 or "1" (ref §4.9)."""
    if value is True:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("true", "1")


@dataclass(slots=True)
class Activity:
    """One event, page view or screen view in a person's (or an anonymous id's) activity log."""

    type: str
    name: str
    data: dict[str, Any]
    timestamp: float
    received_at: float
    id: str | None = None
    anonymous_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type, "name": self.name, "data": self.data,
            "timestamp": self.timestamp, "received_at": self.received_at,
            "id": self.id, "anonymous_id": self.anonymous_id,
        }


@dataclass(slots=True)
class Device:
    token: str
    platform: str | None
    last_used: float
    attributes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "platform": self.platform, "last_used": self.last_used,
                "attributes": self.attributes}


@dataclass(slots=True)
class Person:
    """A profile. ``attribute_times`` holds the update time of every attribute, including removed
    ones (tombstones), so an older update can never bring back or overwrite a newer value."""

    cio_id: str
    id: str | None
    email: str | None
    created_at: float
    attributes: dict[str, Any] = field(default_factory=dict)
    attribute_times: dict[str, float] = field(default_factory=dict)
    activity: deque[Activity] = field(default_factory=deque)
    devices: dict[str, Device] = field(default_factory=dict)
    relationships: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    anonymous_ids: list[str] = field(default_factory=list)

    @property
    def unsubscribed(self) -> bool:
        return truthy(self.attributes.get("unsubscribed"))

    def attributes_as_strings(self) -> dict[str, str]:
        return {k: as_string(v) for k, v in self.attributes.items()}

    def events(self, type: str | None = None) -> list[Activity]:
        """Activity of one type ("event", "page", "screen"), or all of it."""
        return [a for a in self.activity if type is None or a.type == type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cio_id": self.cio_id, "id": self.id, "email": self.email,
            "created_at": self.created_at, "attributes": self.attributes,
            "attribute_timestamps": {
                k: t for k, t in self.attribute_times.items() if k in self.attributes
            },
            "unsubscribed": self.unsubscribed,
            "activity": [a.to_dict() for a in self.activity],
            "devices": [d.to_dict() for d in self.devices.values()],
            "relationships": [
                {"object_type_id": k[0], "object_id": k[1], "attributes": v}
                for k, v in self.relationships.items()
            ],
            "anonymous_ids": self.anonymous_ids,
        }


@dataclass(slots=True)
class CustomObject:
    object_type_id: str
    object_id: str
    cio_object_id: str
    anonymous: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    attribute_times: dict[str, float] = field(default_factory=dict)
    relationships: dict[str, dict[str, Any]] = field(default_factory=dict)  # by person cio_id

    @property
    def key(self) -> ObjectKey:
        return (self.object_type_id, self.object_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object_type_id": self.object_type_id, "object_id": self.object_id,
            "cio_object_id": self.cio_object_id, "anonymous": self.anonymous,
            "attributes": self.attributes,
            "relationships": [
                {"cio_id": k, "attributes": v} for k, v in self.relationships.items()
            ],
        }


@dataclass(slots=True)
class MergeRecord:
    primary: str  # cio_id
    secondary: str  # cio_id of the deleted secondary
    at: float


@dataclass(slots=True)
class Dropped:
    """A call accepted with 200 but not applied; Customer.io would show it in the Activity Log."""

    reason: str
    operation: str
    detail: str
    at: float
