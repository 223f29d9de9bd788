"""Track API v1: turn a validated request into operations (ref §4).

Every function takes the decoded path parts and the parsed JSON body and returns either the
operation to apply or the 400 reply listing every violation (``{"meta": {"errors": [...]}}``).
"""

from __future__ import annotations

from typing import Any

from . import operations as ops
from .identifiers import Ident, classify
from .responses import Reply, meta_error, meta_errors
from .validation import (
    Violation,
    check_attributes,
    check_device,
    check_event,
    check_identifier,
    check_timestamp,
    device_fields,
)

Result = ops.Operation | Reply

MERGE_KINDS = ("id", "email", "cio_id")


def _reject(violations: list[Violation]) -> Reply:
    return meta_errors([v.message for v in violations])


def _object_body(body: Any) -> dict[str, Any] | Reply:
    """v1 bodies are JSON objects; a missing body counts as ``{}`` (DELETE/suppress send none)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        return meta_errors(["request body must be a JSON object"])
    return body


def _path_ident(identifier: str) -> Ident | list[Violation]:
    who = classify(identifier)
    problems = check_identifier("identifier", who.value)
    return problems or who


def identify(identifier: str, body: Any) -> Result:
    """``PUT /api/v1/customers/{identifier}``: a flat object of attributes plus control keys."""
    attrs = _object_body(body)
    if isinstance(attrs, Reply):
        return attrs
    who = _path_ident(identifier)
    problems: list[Violation] = [] if isinstance(who, Ident) else who
    body_id = attrs.get("id")
    if body_id is not None:
        if isinstance(who, Ident) and who.kind == "id" and str(body_id) != who.value:
            problems.append(Violation(
                "id", "invalid", "id attribute and identifier are not the same value"
            ))
        else:
            problems.extend(check_identifier("id", body_id, "id attribute"))
    problems.extend(check_attributes(attrs, ""))
    problems.extend(check_timestamp("_timestamp", attrs.get("_timestamp")))
    relationships = attrs.get("cio_relationships")
    links, action, rel_problems = _relationships(relationships)
    problems.extend(rel_problems)
    if problems or not isinstance(who, Ident):
        return _reject(problems)
    anonymous_id = attrs.get("anonymous_id")
    return ops.Identify(
        who=who,
        attributes={k: v for k, v in attrs.items() if k not in _IDENTIFY_CONTROL},
        timestamp=attrs.get("_timestamp"),
        update_only=attrs.get("_update") is True,
        anonymous_id=str(anonymous_id) if anonymous_id not in (None, "") else None,
        relationships=links,
        relationship_action=action,
    )


# Keys consumed by the call itself; ``id`` stays so the read model can apply it as an identifier.
_IDENTIFY_CONTROL = frozenset({"_update", "_timestamp", "cio_relationships", "anonymous_id"})


def _relationships(
    value: Any,
) -> tuple[list[ops.Link] | None, ops.RelationshipAction, list[Violation]]:
    """The v1 ``cio_relationships`` attribute: ``{"action": ..., "relationships": [...]}``."""
    if value is None:
        return None, "add_relationships", []
    if not isinstance(value, dict) or not isinstance(value.get("relationships"), list):
        return None, "add_relationships", [Violation(
            "cio_relationships", "invalid",
            "cio_relationships must be an object with an action and a relationships list",
        )]
    action = value.get("action", "add_relationships")
    if action not in ("add_relationships", "delete_relationships"):
        return None, "add_relationships", [Violation(
            "cio_relationships.action", "invalid",
            "cio_relationships action must be add_relationships or delete_relationships",
        )]
    links: list[ops.Link] = []
    problems: list[Violation] = []
    for item in value["relationships"]:
        ref = object_ref(item.get("identifiers") if isinstance(item, dict) else None)
        if ref is None:
            problems.append(Violation(
                "cio_relationships.relationships", "invalid",
                "each relationship needs identifiers object_type_id and object_id, "
                "or cio_object_id",
            ))
            continue
        attributes = item.get("relationship_attributes")
        attributes = attributes if isinstance(attributes, dict) else None
        links.append(ops.Link(obj=ref, attributes=attributes))
    return links, action, problems


def object_ref(identifiers: Any) -> ops.ObjectRef | None:
    """Object identifiers: type + id, or cio_object_id, or type + anonymous_id (for
    identify_anonymous)."""
    if not isinstance(identifiers, dict):
        return None
    cio_object_id = identifiers.get("cio_object_id")
    if cio_object_id not in (None, ""):
        return ops.ObjectRef(cio_object_id=str(cio_object_id))
    type_id, object_id = identifiers.get("object_type_id"), identifiers.get("object_id")
    anonymous_id = identifiers.get("anonymous_id")
    if type_id in (None, "") or (object_id in (None, "") and anonymous_id in (None, "")):
        return None
    if object_id in (None, ""):
        return ops.ObjectRef(object_type_id=str(type_id), anonymous_id=str(anonymous_id))
    return ops.ObjectRef(object_type_id=str(type_id), object_id=str(object_id))


def delete(identifier: str, body: Any) -> Result:
    """``DELETE /api/v1/customers/{identifier}`` (python sends ``{}`` as the body)."""
    who = _path_ident(identifier)
    return ops.DeletePerson(who) if isinstance(who, Ident) else _reject(who)


def _event(body: Any, who: Ident | None) -> Result:
    data = _object_body(body)
    if isinstance(data, Reply):
        return data
    problems = check_event(
        data.get("name"), data.get("data"), data.get("id"), data.get("timestamp")
    )
    if problems:
        return _reject(problems)
    kind = data.get("type")
    anonymous_id = data.get("anonymous_id")
    return ops.Track(
        type=kind if kind in ("page", "screen") else "event",
        name=data["name"].strip(),
        data=data.get("data") or {},
        who=who,
        anonymous_id=str(anonymous_id) if who is None and anonymous_id not in (None, "") else None,
        timestamp=data.get("timestamp"),
        dedupe_id=data.get("id"),
    )


def track(identifier: str, body: Any) -> Result:
    """``POST /api/v1/customers/{identifier}/events``: event, page or screen for a person."""
    who = _path_ident(identifier)
    return _event(body, who) if isinstance(who, Ident) else _reject(who)


def track_anonymous(body: Any) -> Result:
    """``POST /api/v1/events``: an event without a profile, optionally with an anonymous_id."""
    return _event(body, None)


def add_device(identifier: str, body: Any) -> Result:
    """``PUT /api/v1/customers/{identifier}/devices``: ``{"device": {id, platform, ...}}``."""
    data = _object_body(body)
    if isinstance(data, Reply):
        return data
    who = _path_ident(identifier)
    problems: list[Violation] = [] if isinstance(who, Ident) else who
    device = data.get("device")
    problems.extend(check_device(device, "id"))
    if problems or not isinstance(who, Ident):
        return _reject(problems)
    assert isinstance(device, dict)
    token, platform, last_used, attributes = device_fields(device, "id")
    return ops.AddDevice(who, token, platform, last_used, attributes)


def delete_device(identifier: str, device_id: str, body: Any) -> Result:
    """``DELETE /api/v1/customers/{identifier}/devices/{device_id}``."""
    who = _path_ident(identifier)
    if not isinstance(who, Ident):
        return _reject(who)
    return ops.DeleteDevice(who, device_id)


def suppress(identifier: str, body: Any) -> Result:
    who = _path_ident(identifier)
    return ops.Suppress(who) if isinstance(who, Ident) else _reject(who)


def unsuppress(identifier: str, body: Any) -> Result:
    who = _path_ident(identifier)
    return ops.Unsuppress(who) if isinstance(who, Ident) else _reject(who)


def merge_side(side: Any) -> Ident | None:
    """One side of a merge: exactly one of id, email, cio_id (bare, no ``cio_`` prefix)."""
    if not isinstance(side, dict) or len(side) != 1:
        return None
    ((kind, value),) = side.items()
    if kind not in MERGE_KINDS or value in (None, "") or isinstance(value, dict | list | bool):
        return None
    text = str(value)
    if kind == "cio_id" and text.startswith("cio_"):
        text = text[4:]
    return Ident(kind, text)


def merge(body: Any) -> Result:
    """``POST /api/v1/merge_customers``: errors here use ``meta.error`` (ref §4.8)."""
    data = _object_body(body)
    if isinstance(data, Reply):
        return data
    for side in ("primary", "secondary"):
        if merge_side(data.get(side)) is None:
            return meta_error(400, f"{side} must have exactly one of: id, email, cio_id")
    primary, secondary = merge_side(data["primary"]), merge_side(data["secondary"])
    assert primary is not None and secondary is not None
    return ops.Merge(primary, secondary)


def unsubscribe(delivery_id: str, body: Any) -> Result:
    """``POST /unsubscribe/{delivery_id}`` with ``{"unsubscribe": true}`` (no auth)."""
    if not delivery_id:
        return meta_error(400, "delivery_id is required")
    if not isinstance(body, dict) or body.get("unsubscribe") is not True:
        return meta_error(400, "body must be {\"unsubscribe\": true}")
    return ops.Unsubscribe(delivery_id)
