"""The operations a Track API call asks for, independent of the API version that carried them.

v1 and v2 requests are both parsed into these structs and the read model applies only these, so
a workload produces the same state whichever version delivered it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .identifiers import Ident

ActivityType = Literal["event", "page", "screen"]
RelationshipAction = Literal["add_relationships", "delete_relationships"]


class ObjectRef(msgspec.Struct, frozen=True):
    """An object: by (object_type_id, object_id), by cio_object_id, or anonymous by anonymous_id."""

    object_type_id: str | None = None
    object_id: str | None = None
    cio_object_id: str | None = None
    anonymous_id: str | None = None


class Link(msgspec.Struct, frozen=True):
    """One side of a person-object relationship plus the relationship's attributes."""

    person: Ident | None = None
    obj: ObjectRef | None = None
    attributes: dict[str, Any] | None = None


class Identify(msgspec.Struct):
    """Create or update a person; ``attributes`` may carry ``id`` and ``email`` identifiers."""

    who: Ident
    attributes: dict[str, Any]
    timestamp: float | None = None
    update_only: bool = False
    anonymous_id: str | None = None
    relationships: list[Link] | None = None
    relationship_action: RelationshipAction = "add_relationships"


class DeletePerson(msgspec.Struct):
    who: Ident


class Track(msgspec.Struct):
    """An event, page view or screen view, for a person (`who`) or anonymous (`anonymous_id`)."""

    type: ActivityType
    name: str
    data: dict[str, Any]
    who: Ident | None = None
    anonymous_id: str | None = None
    timestamp: float | None = None
    dedupe_id: str | None = None


class AddDevice(msgspec.Struct):
    who: Ident
    token: str
    platform: str | None
    last_used: float | None
    attributes: dict[str, Any]


class DeleteDevice(msgspec.Struct):
    who: Ident
    token: str


class Suppress(msgspec.Struct):
    who: Ident


class Unsuppress(msgspec.Struct):
    who: Ident


class Merge(msgspec.Struct):
    primary: Ident
    secondary: Ident


class PersonRelationships(msgspec.Struct):
    who: Ident
    action: RelationshipAction
    links: list[Link]


class IdentifyObject(msgspec.Struct):
    obj: ObjectRef
    attributes: dict[str, Any]
    timestamp: float | None = None
    links: list[Link] | None = None
    relationship_action: RelationshipAction = "add_relationships"


class DeleteObject(msgspec.Struct):
    obj: ObjectRef


class ObjectRelationships(msgspec.Struct):
    obj: ObjectRef
    action: RelationshipAction
    links: list[Link]


class DeliveryEvent(msgspec.Struct):
    delivery_id: str
    name: str
    timestamp: float | None
    attributes: dict[str, Any]


class Unsubscribe(msgspec.Struct):
    delivery_id: str


Operation = (
    Identify
    | DeletePerson
    | Track
    | AddDevice
    | DeleteDevice
    | Suppress
    | Unsuppress
    | Merge
    | PersonRelationships
    | IdentifyObject
    | DeleteObject
    | ObjectRelationships
    | DeliveryEvent
    | Unsubscribe
)
