"""The operations Turnout asks of Customer.io, each knowing its v2 batch item and its v1 request.

Mapping produces these; the request builder packs them into HTTP requests; the client sends them
and reports one result per operation. They are msgspec Structs tagged by class name, so the
delivery lane can store them (dead letters, the debugger) and read them back unchanged.

Every operation names the people and objects it touches (`keys`): the client never sends an
operation while an earlier operation with a shared key in the same `send` call is unresolved, which
keeps one person's changes in order.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import quote

import msgspec

IdentifierKind = Literal["id", "email", "cio_id"]
EventKind = Literal["event", "page", "screen"]

# Loose on purpose, like Customer.io's own partner integration: something@something.tld.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _segment(value: str) -> str:
    """One URL path segment: every reserved character escaped, `/` included (ref §3)."""
    return quote(value, safe="")


class PersonRef(msgspec.Struct, frozen=True):
    """A person as Customer.io addresses them: exactly one identifier of one kind.

    `cio_id` values are stored bare (without the `cio_` prefix), as the v2 API and the v1 merge
    body want them; the v1 path puts the prefix back.
    """

    kind: IdentifierKind
    value: str

    @classmethod
    def classify(cls, identifier: str) -> PersonRef:
        """Read an identifier the way Customer.io reads a v1 path: `cio_…`, e-mail, else id."""
        if identifier.startswith("cio_") and len(identifier) > 4:
            return cls("cio_id", identifier[4:])
        if _EMAIL.match(identifier):
            return cls("email", identifier)
        return cls("id", identifier)

    @property
    def original(self) -> str:
        """The identifier as the tracking call gave it."""
        return f"cio_{self.value}" if self.kind == "cio_id" else self.value

    def v2(self) -> dict[str, str]:
        return {self.kind: self.value}

    def path(self) -> str:
        return _segment(self.original)

    @property
    def key(self) -> str:
        # E-mail identifiers are case-insensitive in Customer.io, so order them as one person.
        value = self.value.lower() if self.kind == "email" else self.value
        return f"person:{self.kind}:{value}"


class V1Request(msgspec.Struct, frozen=True):
    """One classic (v1) Track API request: method, path under the base URL, JSON body or none."""

    method: Literal["GET", "PUT", "POST", "DELETE"]
    path: str
    body: dict[str, Any] | None = None


class Operation(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="op"):
    """Base of every operation. Subclasses implement the two wire forms and `keys`."""

    def v2_item(self) -> dict[str, Any] | None:
        """This operation as one `/api/v2/batch` item, or None when v2 cannot express it."""
        raise NotImplementedError

    def v1_request(self) -> V1Request | None:
        """This operation as a v1 request, or None when only v2 can express it (objects)."""
        raise NotImplementedError

    @property
    def keys(self) -> tuple[str, ...]:
        """The people and objects this operation changes, for ordering."""
        raise NotImplementedError


class IdentifyPerson(Operation, frozen=True, kw_only=True):
    """Create or update a person's attributes, ordered by the call's timestamp."""

    person: PersonRef
    attributes: dict[str, Any]
    timestamp: int | None = None  # unix seconds; an older update never overwrites a newer one

    def v2_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": "person",
            "identifiers": self.person.v2(),
            "action": "identify",
            "attributes": self.attributes,
        }
        if self.timestamp is not None:
            item["timestamp"] = self.timestamp
        return item

    def v1_request(self) -> V1Request:
        body = dict(self.attributes)
        if self.timestamp is not None:
            body["_timestamp"] = self.timestamp
        return V1Request("PUT", f"/api/v1/customers/{self.person.path()}", body)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.person.key,)


class PersonEvent(Operation, frozen=True, kw_only=True):
    """An event, page view or screen view of a known person, deduplicated by `id` (a ULID)."""

    person: PersonRef
    kind: EventKind = "event"
    name: str
    data: dict[str, Any]
    timestamp: int
    id: str

    def v2_item(self) -> dict[str, Any]:
        return {
            "type": "person",
            "identifiers": self.person.v2(),
            "action": self.kind,
            "name": self.name,
            "id": self.id,
            "timestamp": self.timestamp,
            "attributes": self.data,
        }

    def v1_request(self) -> V1Request:
        body = {
            "name": self.name,
            "type": self.kind,
            "data": self.data,
            "timestamp": self.timestamp,
            "id": self.id,
        }
        return V1Request("POST", f"/api/v1/customers/{self.person.path()}/events", body)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.person.key,)


class AnonymousEvent(Operation, frozen=True, kw_only=True):
    """An event of a visitor not yet identified; merged into the person when an identify later
    carries the same `anonymous_id`.

    Only v1 documents anonymous events (`POST /api/v1/events`); the v2 `anonymous_id` identifier
    some integrations use is not in Customer.io's published schema, so these always go by v1.
    """

    anonymous_id: str
    kind: EventKind = "event"
    name: str
    data: dict[str, Any]
    timestamp: int
    id: str

    def v2_item(self) -> None:
        return None

    def v1_request(self) -> V1Request:
        body = {
            "name": self.name,
            "type": self.kind,
            "anonymous_id": self.anonymous_id,
            "data": self.data,
            "timestamp": self.timestamp,
            "id": self.id,
        }
        return V1Request("POST", "/api/v1/events", body)

    @property
    def keys(self) -> tuple[str, ...]:
        return (f"anonymous:{self.anonymous_id}",)


class AddDevice(Operation, frozen=True, kw_only=True):
    """Add or update a person's mobile device (push token)."""

    person: PersonRef
    token: str
    platform: Literal["ios", "android"]
    last_used: int
    attributes: dict[str, str] = msgspec.field(default_factory=dict)

    def v2_item(self) -> dict[str, Any]:
        device = {
            "token": self.token,
            "platform": self.platform,
            "last_used": self.last_used,
            "attributes": self.attributes,
        }
        return {
            "type": "person",
            "identifiers": self.person.v2(),
            "action": "add_device",
            "device": device,
        }

    def v1_request(self) -> V1Request:
        device = {
            "id": self.token,  # v1 calls the token `id`, v2 calls it `token` (ref §5.2)
            "platform": self.platform,
            "last_used": self.last_used,
            "attributes": self.attributes,
        }
        path = f"/api/v1/customers/{self.person.path()}/devices"
        return V1Request("PUT", path, {"device": device})

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.person.key,)


class DeleteDevice(Operation, frozen=True, kw_only=True):
    """Remove a device from a person (deleting an unknown device is not an error)."""

    person: PersonRef
    token: str

    def v2_item(self) -> dict[str, Any]:
        return {
            "type": "person",
            "identifiers": self.person.v2(),
            "action": "delete_device",
            "device": {"token": self.token},
        }

    def v1_request(self) -> V1Request:
        path = f"/api/v1/customers/{self.person.path()}/devices/{_segment(self.token)}"
        return V1Request("DELETE", path)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.person.key,)


class _PersonAction(Operation, frozen=True, kw_only=True):
    person: PersonRef

    _action = ""

    def v2_item(self) -> dict[str, Any]:
        return {"type": "person", "identifiers": self.person.v2(), "action": self._action}

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.person.key,)


class DeletePerson(_PersonAction, frozen=True, kw_only=True):
    """Delete a person and their data (a later call about them creates them again)."""

    _action = "delete"

    def v1_request(self) -> V1Request:
        return V1Request("DELETE", f"/api/v1/customers/{self.person.path()}")


class SuppressPerson(_PersonAction, frozen=True, kw_only=True):
    """Delete a person and block their identifiers (GDPR/CCPA)."""

    _action = "suppress"

    def v1_request(self) -> V1Request:
        return V1Request("POST", f"/api/v1/customers/{self.person.path()}/suppress")


class UnsuppressPerson(_PersonAction, frozen=True, kw_only=True):
    """Unblock a suppressed person's identifiers (the profile is not restored)."""

    _action = "unsuppress"

    def v1_request(self) -> V1Request:
        return V1Request("POST", f"/api/v1/customers/{self.person.path()}/unsuppress")


class MergePeople(Operation, frozen=True, kw_only=True):
    """Merge `secondary` into `primary`; the secondary person is deleted."""

    primary: PersonRef
    secondary: PersonRef

    def v2_item(self) -> dict[str, Any]:
        return {
            "type": "person",
            "action": "merge",
            "primary": self.primary.v2(),
            "secondary": self.secondary.v2(),
        }

    def v1_request(self) -> V1Request:
        body = {"primary": self.primary.v2(), "secondary": self.secondary.v2()}
        return V1Request("POST", "/api/v1/merge_customers", body)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.primary.key, self.secondary.key)


class Relationship(msgspec.Struct, frozen=True):
    """A person related to an object, with attributes of the relationship itself."""

    person: PersonRef
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)

    def v2(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"identifiers": self.person.v2()}
        if self.attributes:
            entry["relationship_attributes"] = self.attributes
        return entry


class _ObjectOperation(Operation, frozen=True, kw_only=True):
    object_type_id: str
    object_id: str

    def _identifiers(self) -> dict[str, str]:
        return {"object_type_id": self.object_type_id, "object_id": self.object_id}

    def v1_request(self) -> None:
        return None  # objects exist only in the v2 API

    @property
    def _object_key(self) -> str:
        return f"object:{self.object_type_id}:{self.object_id}"


class IdentifyObject(_ObjectOperation, frozen=True, kw_only=True):
    """Create or update an object (a `group`), optionally relating people to it."""

    attributes: dict[str, Any]
    relationships: tuple[Relationship, ...] = ()

    def v2_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": "object",
            "identifiers": self._identifiers(),
            "action": "identify",
            "attributes": self.attributes,
        }
        if self.relationships:
            item["cio_relationships"] = [r.v2() for r in self.relationships]
        return item

    @property
    def keys(self) -> tuple[str, ...]:
        return (self._object_key, *(r.person.key for r in self.relationships))


class DeleteObject(_ObjectOperation, frozen=True, kw_only=True):
    """Delete an object."""

    def v2_item(self) -> dict[str, Any]:
        return {"type": "object", "identifiers": self._identifiers(), "action": "delete"}

    @property
    def keys(self) -> tuple[str, ...]:
        return (self._object_key,)


class DeleteRelationship(_ObjectOperation, frozen=True, kw_only=True):
    """Remove the relationship between a person and an object."""

    person: PersonRef

    def v2_item(self) -> dict[str, Any]:
        return {
            "type": "object",
            "identifiers": self._identifiers(),
            "action": "delete_relationships",
            "cio_relationships": [{"identifiers": self.person.v2()}],
        }

    @property
    def keys(self) -> tuple[str, ...]:
        return (self._object_key, self.person.key)
