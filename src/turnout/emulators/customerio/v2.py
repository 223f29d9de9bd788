"""Track API v2: ``POST /api/v2/entity`` and ``POST /api/v2/batch`` (ref §5).

An entity is one operation; a batch is ``{"batch": [entity, ...]}``. Invalid items of a batch are
reported by index (207, or 200 when configured) while the valid ones are applied; an invalid
entity, or a batch that cannot be read at all, is a 400 ``{"errors": [...]}``.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from . import operations as ops
from .identifiers import Ident, IdentKind
from .v1 import merge_side, object_ref
from .validation import (
    Violation,
    check_attributes,
    check_device,
    check_event,
    check_identifier,
    check_timestamp,
    device_fields,
)

Parsed = ops.Operation | list[Violation]

PERSON_ACTIONS = frozenset({
    "identify", "delete", "event", "page", "screen", "add_device", "delete_device", "merge",
    "suppress", "unsuppress", "add_relationships", "delete_relationships",
})
OBJECT_ACTIONS = frozenset({
    "identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships",
})
DELIVERY_EVENTS = frozenset({"opened", "converted", "delivered"})
_ACTIVITY = frozenset({"event", "page", "screen"})


class BatchBody(msgspec.Struct):
    """A batch decoded lazily: each item stays raw so its own size can be checked exactly."""

    batch: list[msgspec.Raw]


def _bad(field: str, message: str, reason: str = "invalid") -> list[Violation]:
    return [Violation(field, cast(Any, reason), message)]


def person_ident(identifiers: Any, allow_anonymous: bool = False) -> Ident | str | list[Violation]:
    """Exactly one of id, email, cio_id (and, for activity, anonymous_id, returned as a str)."""
    if not isinstance(identifiers, dict) or not identifiers:
        return _bad("identifiers", "identifiers are required", "required")
    if len(identifiers) != 1:
        return _bad("identifiers", "identifiers must contain exactly one of: id, email, cio_id")
    ((kind, value),) = identifiers.items()
    if kind == "anonymous_id" and allow_anonymous:
        if not isinstance(value, str) or not value:
            return _bad("identifiers.anonymous_id", "anonymous_id cannot be blank")
        return value
    if kind == "phone":
        return _bad("identifiers.phone", "phone is not enabled as an identifier in this workspace")
    if kind not in ("id", "email", "cio_id"):
        return _bad("identifiers", f"unknown identifier '{kind}': use one of id, email, cio_id")
    problems = check_identifier(f"identifiers.{kind}", value, kind)
    if problems:
        return problems
    text = str(value)
    if kind == "cio_id" and text.startswith("cio_"):
        text = text[4:]
    return Ident(cast(IdentKind, kind), text)


def _attributes(item: dict[str, Any], key: str = "attributes") -> dict[str, Any] | list[Violation]:
    attributes = item.get(key)
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        return _bad(key, f"{key} must be an object")
    return attributes


def _links(value: Any, to_person: bool) -> tuple[list[ops.Link], list[Violation]]:
    """``cio_relationships``: a list of ``{identifiers, relationship_attributes}``."""
    if not isinstance(value, list):
        return [], _bad("cio_relationships", "cio_relationships must be a list", "required")
    links: list[ops.Link] = []
    for n, rel in enumerate(value):
        identifiers = rel.get("identifiers") if isinstance(rel, dict) else None
        attrs = rel.get("relationship_attributes") if isinstance(rel, dict) else None
        attrs = attrs if isinstance(attrs, dict) else None
        if to_person:
            who = person_ident(identifiers)
            if not isinstance(who, Ident):
                return [], _bad(
                    f"cio_relationships.{n}.identifiers",
                    "relationship identifiers must be exactly one of: id, email, cio_id",
                )
            links.append(ops.Link(person=who, attributes=attrs))
        else:
            ref = object_ref(identifiers)
            if ref is None:
                return [], _bad(f"cio_relationships.{n}.identifiers",
                                "relationship identifiers need object_type_id and object_id, "
                                "or cio_object_id")
            links.append(ops.Link(obj=ref, attributes=attrs))
    return links, []


def _person(item: dict[str, Any], action: str) -> Parsed:
    if action == "merge":
        primary, secondary = merge_side(item.get("primary")), merge_side(item.get("secondary"))
        if primary is None:
            return _bad("primary", "primary must have exactly one of: id, email, cio_id")
        if secondary is None:
            return _bad("secondary", "secondary must have exactly one of: id, email, cio_id")
        return ops.Merge(primary, secondary)
    who = person_ident(item.get("identifiers"), allow_anonymous=action in _ACTIVITY)
    if isinstance(who, list):
        return who
    if action in _ACTIVITY:
        data = _attributes(item)
        if isinstance(data, list):
            return data
        problems = check_event(item.get("name"), data, item.get("id"), item.get("timestamp"),
                               "attributes")
        if problems:
            return problems
        return ops.Track(
            type=cast(ops.ActivityType, action), name=item["name"].strip(), data=data,
            who=who if isinstance(who, Ident) else None,
            anonymous_id=who if isinstance(who, str) else None,
            timestamp=item.get("timestamp"), dedupe_id=item.get("id"),
        )
    assert isinstance(who, Ident)
    if action == "identify":
        return _identify(item, who)
    if action == "delete":
        return ops.DeletePerson(who)
    if action == "suppress":
        return ops.Suppress(who)
    if action == "unsuppress":
        return ops.Unsuppress(who)
    if action in ("add_device", "delete_device"):
        device = item.get("device")
        if action == "delete_device":
            token = device.get("token") if isinstance(device, dict) else None
            if not isinstance(token, str) or not token:
                return _bad("device.token", "device token is required", "required")
            return ops.DeleteDevice(who, token)
        problems = check_device(device, "token")
        if problems:
            return problems
        token, platform, last_used, attributes = device_fields(cast(dict[str, Any], device),
                                                               "token")
        return ops.AddDevice(who, token, platform, last_used, attributes)
    links, problems = _links(item.get("cio_relationships"), to_person=False)
    if problems:
        return problems
    return ops.PersonRelationships(who, cast(ops.RelationshipAction, action), links)


def _identify(item: dict[str, Any], who: Ident) -> Parsed:
    attrs = _attributes(item)
    if isinstance(attrs, list):
        return attrs
    problems = check_attributes(attrs, "attributes.")
    problems.extend(check_timestamp("timestamp", item.get("timestamp")))
    body_id = attrs.get("id")
    if body_id is not None:
        if who.kind == "id" and str(body_id) != who.value:
            problems.append(Violation(
                "attributes.id", "invalid", "id attribute and identifier are not the same value"
            ))
        else:
            problems.extend(check_identifier("attributes.id", body_id, "id attribute"))
    links: list[ops.Link] | None = None
    if item.get("cio_relationships") is not None:
        links, link_problems = _links(item["cio_relationships"], to_person=False)
        problems.extend(link_problems)
    if problems:
        return problems
    anonymous_id = attrs.get("anonymous_id")
    return ops.Identify(
        who=who,
        attributes={k: v for k, v in attrs.items() if k not in ("_update", "anonymous_id")},
        timestamp=item.get("timestamp"),
        update_only=attrs.get("_update") is True,
        anonymous_id=str(anonymous_id) if anonymous_id not in (None, "") else None,
        relationships=links,
    )


def _object(item: dict[str, Any], action: str) -> Parsed:
    ref = object_ref(item.get("identifiers"))
    if ref is None or (action == "identify_anonymous") != (ref.anonymous_id is not None):
        need = ("object_type_id and anonymous_id" if action == "identify_anonymous"
                else "object_type_id and object_id, or cio_object_id")
        return _bad("identifiers", f"object identifiers need {need}", "required")
    if ref.object_id is not None:
        problems = check_identifier("identifiers.object_id", ref.object_id, "object_id")
        if problems:
            return problems
    if action == "delete":
        return ops.DeleteObject(ref)
    if action in ("add_relationships", "delete_relationships"):
        links, problems = _links(item.get("cio_relationships"), to_person=True)
        if problems:
            return problems
        return ops.ObjectRelationships(ref, cast(ops.RelationshipAction, action), links)
    attrs = _attributes(item)
    if isinstance(attrs, list):
        return attrs
    problems = check_attributes(attrs, "attributes.")
    problems.extend(check_timestamp("timestamp", item.get("timestamp")))
    links_or_none: list[ops.Link] | None = None
    if item.get("cio_relationships") is not None:
        links_or_none, link_problems = _links(item["cio_relationships"], to_person=True)
        problems.extend(link_problems)
    if problems:
        return problems
    return ops.IdentifyObject(ref, attrs, item.get("timestamp"), links_or_none)


def _delivery(item: dict[str, Any], action: str) -> Parsed:
    identifiers = item.get("identifiers")
    delivery_id = identifiers.get("id") if isinstance(identifiers, dict) else None
    if not isinstance(delivery_id, str) or not delivery_id:
        return _bad("identifiers.id", "delivery identifiers need the delivery id", "required")
    if action != "event":
        return _bad("action", "delivery supports only the event action")
    name = item.get("name")
    if name not in DELIVERY_EVENTS:
        names = ", ".join(sorted(DELIVERY_EVENTS))
        return _bad("name", f"delivery event name must be one of: {names}",
                    "required" if name is None else "invalid")
    attrs = _attributes(item)
    if isinstance(attrs, list):
        return attrs
    problems = check_timestamp("timestamp", item.get("timestamp"))
    if problems:
        return problems
    return ops.DeliveryEvent(delivery_id, name, item.get("timestamp"), attrs)


def parse_item(item: Any) -> Parsed:
    """One entity (or batch item) into an operation, or the violations that reject it."""
    if not isinstance(item, dict):
        return _bad("", "each entity must be a JSON object")
    kind, action = item.get("type"), item.get("action")
    if kind not in ("person", "object", "delivery"):
        return _bad("type", "type must be one of: person, object, delivery",
                    "required" if kind is None else "invalid")
    allowed = {"person": PERSON_ACTIONS, "object": OBJECT_ACTIONS,
               "delivery": frozenset({"event"})}[kind]
    if action not in allowed:
        return _bad("action", f"action must be one of: {', '.join(sorted(allowed))}",
                    "required" if action is None else "invalid")
    if kind == "person":
        return _person(item, action)
    if kind == "object":
        return _object(item, action)
    return _delivery(item, action)


def error_dict(v: Violation, index: int | None = None) -> dict[str, Any]:
    """The documented v2 error item: ``{batch_index?, reason, field, message}``."""
    out: dict[str, Any] = {} if index is None else {"batch_index": index}
    out.update(reason=v.reason, field=v.field, message=v.message)
    return out
