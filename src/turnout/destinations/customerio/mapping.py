"""Tracking calls to Customer.io operations: pure, no I/O (the mapping, rule by rule, is
documented for users in docs/destinations/customerio.md).

`map_message` returns a `MapResult` with the operations to send, or why the message is filtered
(a rule says skip it) or rejected (it can never be delivered: dead-lettered with the limit named),
plus every adjustment made to fit Customer.io's limits. Nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any

from turnout.destinations.base import MapResult
from turnout.destinations.customerio import limits, reserved
from turnout.destinations.customerio.attributes import (
    Filtered,
    Fitted,
    Rejected,
    check_id,
    check_value,
    fit_attributes,
    split_attributes,
)
from turnout.destinations.customerio.dedupe import ulid_for
from turnout.destinations.customerio.operations import (
    AnonymousEvent,
    EventKind,
    IdentifyObject,
    IdentifyPerson,
    MergePeople,
    Operation,
    PersonEvent,
    PersonRef,
    Relationship,
)
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.destinations.customerio.values import (
    convert_iso_strings,
    cut_utf8,
    iso_to_unix,
    json_bytes,
    to_unix_seconds,
)
from turnout.destinations.integrations import filtered_by_integrations, own_keys
from turnout.spec.message import Message

# `integrations` keys that address this destination, compared without case or punctuation:
# Segment's "Customer.io", Customer.io's own "Customer.io Data Pipelines", and "customerio".
_OWN_KEYS = own_keys("Customer.io", "Customer.io Data Pipelines")

# Names for page and screen calls that carry no name, URL or path at all (Customer.io requires a
# name, and these read naturally in the Activity Log next to "Page View"/"Screen" types).
UNNAMED_PAGE = "Page View"
UNNAMED_SCREEN = "Screen View"


def map_message(message: Message, settings: CustomerIOSettings) -> MapResult:
    """The Customer.io operations for one normalised message."""
    rule = filtered_by_integrations(message.integrations, _OWN_KEYS, "Customer.io", "Customer.io")
    if rule is not None:
        return MapResult(filtered=rule)
    call = Call(message, settings)
    try:
        operations = _HANDLERS[message.type](call)
    except Filtered as exc:
        return MapResult(filtered=str(exc), adjustments=call.adjustments)
    except Rejected as exc:
        return MapResult(rejected=str(exc), adjustments=call.adjustments)
    return MapResult(operations=operations, adjustments=call.adjustments)



class Call:
    """One message being mapped: the helpers every call type shares, and the adjustments made."""

    def __init__(self, message: Message, settings: CustomerIOSettings) -> None:
        self.message = message
        self.settings = settings
        self.adjustments: list[str] = []
        self.properties: dict[str, Any] = dict(message.properties or {})
        self._seconds: int | None = None

    def context(self, key: str) -> dict[str, Any]:
        """A `context` sub-object (`page`, `device`, `os`, ...), or {} when absent or not an object:
        the spec lets SDKs put anything there, and a stray value must not break mapping."""
        value = self.message.context.get(key)
        return value if isinstance(value, dict) else {}

    # -- who ---------------------------------------------------------------------------------

    def person(self, identifier: str, field: str = "userId") -> PersonRef:
        check_id(identifier, field)
        return PersonRef.classify(identifier)

    def user(self) -> PersonRef | None:
        """The person the call is about (its `userId`), or None for an anonymous call."""
        return self.person(self.message.user_id) if self.message.user_id else None

    def require_user(self, what: str) -> PersonRef:
        person = self.user()
        if person is None:
            raise Filtered(f"{what} needs a userId: Customer.io keeps these on people only")
        return person

    def anonymous_link(self, person: PersonRef | None) -> list[Operation]:
        """For an identified call that also carries an `anonymousId`, the update that records it as
        the person's `anonymous_id`, so Customer.io merges the visitor's earlier anonymous activity.
        It goes before the call's own operations, which also makes sure the person exists."""
        anonymous_id = self.message.anonymous_id
        if person is None or not anonymous_id or anonymous_id == self.message.user_id:
            return []
        check_value(anonymous_id, "anonymousId")
        attributes = {"anonymous_id": anonymous_id}
        return [IdentifyPerson(person=person, attributes=attributes, timestamp=self.seconds())]

    # -- when --------------------------------------------------------------------------------

    def seconds(self) -> int:
        """The call's (skew-corrected) timestamp in unix seconds, worked out once per message:
        several operations of one call carry it."""
        if self._seconds is None:
            self._seconds = self._timestamp_seconds()
        return self._seconds

    def _timestamp_seconds(self) -> int:
        for value in (self.message.timestamp, self.message.received_at):
            seconds = iso_to_unix(value) if value else None
            if seconds is not None:
                return seconds
        raise Rejected(f"timestamp {self.message.timestamp!r} is not an ISO-8601 date-time")

    # -- what --------------------------------------------------------------------------------

    def values(self, data: dict[str, Any]) -> dict[str, Any]:
        """Traits or properties as sent: ISO-8601 strings become unix seconds when configured."""
        return convert_iso_strings(data) if self.settings.convert_timestamps else dict(data)

    def event(self, kind: EventKind, name: str, data: dict[str, Any]) -> list[Operation]:
        """An event (or page/screen view) of the caller, deduplicated by the message's ULID."""
        name = self.fit_event_name(name)
        data = self.values(data)
        size = len(json_bytes(data))
        if size > limits.EVENT_DATA_MAX_BYTES:
            raise Rejected(
                f"event data limit ({limits.EVENT_DATA_MAX_BYTES} bytes): the {kind}'s "
                f"properties are {size} bytes"
            )
        dedupe_id = ulid_for(self.message.message_id, self.message.original_timestamp)
        person = self.user()
        if person is not None:
            event = PersonEvent(
                person=person,
                kind=kind,
                name=name,
                data=data,
                timestamp=self.seconds(),
                id=dedupe_id,
            )
            return [*self.anonymous_link(person), event]
        anonymous_id = self.message.anonymous_id
        if not anonymous_id:
            raise Rejected("the call has neither userId nor anonymousId")
        check_value(anonymous_id, "anonymousId")
        return [
            AnonymousEvent(
                anonymous_id=anonymous_id,
                kind=kind,
                name=name,
                data=data,
                timestamp=self.seconds(),
                id=dedupe_id,
            )
        ]

    def fit_event_name(self, name: str, note: str = "") -> str:
        size = len(name.encode())
        if size <= limits.EVENT_NAME_MAX_BYTES:
            return name
        cut = cut_utf8(name, limits.EVENT_NAME_MAX_BYTES)
        self.adjustments.append(
            f"event name cut from {size} to {len(cut.encode())} bytes (event name limit "
            f"{limits.EVENT_NAME_MAX_BYTES} bytes){note}"
        )
        return cut


# -- identify -------------------------------------------------------------------------------


def _identify(call: Call) -> list[Operation]:
    message = call.message
    traits = dict(message.traits or call.context("traits"))
    if message.user_id:
        person = call.person(message.user_id)
    elif isinstance(traits.get("email"), str) and traits["email"]:
        person = call.person(traits["email"], "traits.email")
    else:
        raise Filtered(
            "identify without userId or traits.email: Customer.io keeps no anonymous profiles"
        )
    attributes = _person_attributes(call, person, traits)
    if message.anonymous_id and message.anonymous_id != message.user_id:
        check_value(message.anonymous_id, "anonymousId")
        attributes["anonymous_id"] = message.anonymous_id
    fitted = fit_attributes(attributes, "trait", call.adjustments)
    timestamp = call.seconds()

    def item_size(part: dict[str, Any]) -> int:
        probe = IdentifyPerson(person=person, attributes=part, timestamp=timestamp)
        return len(json_bytes(probe.v2_item()))

    parts = split_attributes(fitted, call.settings.max_traits_per_identify, item_size)
    return [IdentifyPerson(person=person, attributes=p, timestamp=timestamp) for p in parts]


def _person_attributes(call: Call, person: PersonRef, traits: dict[str, Any]) -> dict[str, Any]:
    """Traits as person attributes: `createdAt` as `created_at` seconds, the rest as given."""
    created = None
    for key in ("createdAt", "created_at"):
        if key in traits:
            raw = traits.pop(key)
            seconds = to_unix_seconds(raw)
            if seconds is None:
                call.adjustments.append(
                    f"trait '{key}' {raw!r} is not a date (ISO-8601 or unix seconds/ms): not sent"
                )
            else:
                created = seconds
    trait_id = traits.get("id")
    if person.kind == "id" and trait_id is not None and str(trait_id) != person.value:
        # Customer.io answers 400 "id attribute and identifier are not the same value".
        del traits["id"]
        call.adjustments.append(
            f"trait 'id' {trait_id!r} differs from userId: not sent (Customer.io rejects an "
            "identify whose id attribute differs from the person's id)"
        )
    attributes = call.values(traits)
    if created is not None:
        attributes["created_at"] = created
    return attributes


# -- track, page, screen ----------------------------------------------------------------------


def _track(call: Call) -> list[Operation]:
    name = call.message.event
    if not name:
        raise Rejected("track call without an event name")
    handler = reserved.HANDLERS.get(name)
    if handler is not None:
        return handler(call)
    return call.event("event", name, call.properties)


def _page(call: Call) -> list[Operation]:
    props = call.properties
    page = call.context("page")
    url = _text(props.get("url")) or _text(page.get("url"))
    name = _text(call.message.name) or _text(props.get("name"))
    note = ""
    if not name and url:
        name, note = url, "; the full URL is in data.url"
    name = name or _text(props.get("path")) or _text(page.get("path")) or UNNAMED_PAGE
    data = dict(props)
    if url and "url" not in data:
        data["url"] = url
    return call.event("page", call.fit_event_name(name, note), data)


def _screen(call: Call) -> list[Operation]:
    name = _text(call.message.name) or _text(call.properties.get("name")) or UNNAMED_SCREEN
    return call.event("screen", name, call.properties)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# -- group ------------------------------------------------------------------------------------


def _group(call: Call) -> list[Operation]:
    message = call.message
    if not message.group_id:
        raise Rejected("group call without a groupId")
    check_id(message.group_id, "groupId")
    traits = dict(message.traits or {})
    object_type = _pop_first(traits, "objectTypeId", "object_type_id")
    object_type_id = str(object_type) if object_type else call.settings.object_type_id
    relationship_raw = _pop_first(traits, "relationshipAttributes", "relationship_attributes")
    attributes = fit_attributes(call.values(traits), "group trait", call.adjustments)
    _check_object_size(attributes, "group traits")
    person = call.user()
    relationships: tuple[Relationship, ...] = ()
    if person is not None:
        rel = relationship_raw if isinstance(relationship_raw, dict) else {}
        fitted = fit_attributes(call.values(rel), "relationship attribute", call.adjustments)
        _check_object_size(fitted, "relationship attributes")
        relationships = (Relationship(person=person, attributes=fitted.values),)

    def item_size(part: dict[str, Any]) -> int:
        probe = IdentifyObject(
            object_type_id=object_type_id,
            object_id=message.group_id or "",
            attributes=part,
            relationships=relationships,
        )
        return len(json_bytes(probe.v2_item()))

    parts = split_attributes(attributes, limits.ATTRIBUTES_PER_CALL_MAX, item_size)
    objects: list[Operation] = [
        IdentifyObject(
            object_type_id=object_type_id,
            object_id=message.group_id,
            attributes=part,
            relationships=relationships if index == 0 else (),
        )
        for index, part in enumerate(parts)
    ]
    return [*call.anonymous_link(person), *objects]


def _check_object_size(attributes: Fitted, what: str) -> None:
    count = len(attributes.values)
    if count > limits.ATTRIBUTES_PER_CALL_MAX:
        raise Rejected(
            f"object attribute count limit ({limits.ATTRIBUTES_PER_CALL_MAX}): {what} has "
            f"{count}"
        )
    size = attributes.json_size
    if size > limits.OBJECT_ATTRIBUTES_MAX_BYTES:
        raise Rejected(
            f"object attributes limit ({limits.OBJECT_ATTRIBUTES_MAX_BYTES} bytes): {what} are "
            f"{size} bytes"
        )


def _pop_first(data: dict[str, Any], *keys: str) -> Any:
    found = None
    for key in keys:
        if key in data:
            value = data.pop(key)
            found = value if found is None else found
    return found


# -- alias ------------------------------------------------------------------------------------


def _alias(call: Call) -> list[Operation]:
    message = call.message
    if not message.user_id:
        raise Rejected("alias call without a userId (the person to keep)")
    if not message.previous_id:
        raise Rejected("alias call without a previousId (the person to merge in)")
    if message.previous_id == message.user_id:
        raise Filtered("alias: previousId equals userId, nothing to merge")
    primary = call.person(message.user_id)
    secondary = call.person(message.previous_id, "previousId")
    return [MergePeople(primary=primary, secondary=secondary)]


_HANDLERS = {
    "identify": _identify,
    "track": _track,
    "page": _page,
    "screen": _screen,
    "group": _group,
    "alias": _alias,
}
