"""Customer.io's semantic track events: event names that act on devices, people and objects.

These are the names Customer.io Data Pipelines gives meaning to, so users moving from it keep
their behaviour. The mobile lifecycle events (`Application Installed`/`Opened`/`Uninstalled`)
also stay ordinary events, as apps use them for campaigns; the others are only their action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from turnout.destinations.customerio import limits
from turnout.destinations.customerio.attributes import Rejected, check_id
from turnout.destinations.customerio.operations import (
    AddDevice,
    DeleteDevice,
    DeleteObject,
    DeletePerson,
    DeleteRelationship,
    Operation,
    PersonRef,
    SuppressPerson,
    UnsuppressPerson,
)
from turnout.destinations.customerio.values import cut_utf8

if TYPE_CHECKING:
    from turnout.destinations.customerio.mapping import Call

Platform = Literal["ios", "android"]


def _device_created_or_updated(call: Call) -> list[Operation]:
    person = call.require_user("Device Created or Updated")
    token = _require_token(call, "Device Created or Updated")
    platform = _platform(call)
    if platform is None:
        raise Rejected(
            "Device Created or Updated: platform unknown (Customer.io takes ios or android; "
            "set context.os.name or context.device.type)"
        )
    device = _add_device(call, person, token, platform, extra=call.properties)
    return [*call.anonymous_link(person), device]


def _lifecycle_install(call: Call) -> list[Operation]:
    """Application Installed / Opened: the device (when the call has a token) and the event."""
    person = call.user()
    token = _token(call)
    operations: list[Operation] = []
    if token is not None:
        platform = _platform(call)
        if person is None:
            call.adjustments.append("device not added: the call has no userId")
        elif platform is None:
            call.adjustments.append(
                "device not added: platform unknown (set context.os.name or context.device.type)"
            )
        else:
            _check_token(token)
            operations.append(_add_device(call, person, token, platform))
    event = call.event("event", call.message.event or "", call.properties)
    # `event` starts with the anonymous_id update when there is one; it must precede the device.
    return [*event[:-1], *operations, event[-1]]


def _device_deleted(call: Call) -> list[Operation]:
    person = call.require_user("Device Deleted")
    token = _require_token(call, "Device Deleted")
    return [DeleteDevice(person=person, token=token)]


def _application_uninstalled(call: Call) -> list[Operation]:
    person = call.user()
    token = _token(call)
    operations: list[Operation] = []
    if token is not None and person is not None:
        _check_token(token)
        operations.append(DeleteDevice(person=person, token=token))
    elif token is not None:
        call.adjustments.append("device not deleted: the call has no userId")
    event = call.event("event", call.message.event or "", call.properties)
    # As for installs: the anonymous_id update (when there is one) goes first.
    return [*event[:-1], *operations, event[-1]]


def _user_deleted(call: Call) -> list[Operation]:
    return [DeletePerson(person=call.require_user("User Deleted"))]


def _user_suppressed(call: Call) -> list[Operation]:
    return [SuppressPerson(person=call.require_user("User Suppressed"))]


def _user_unsuppressed(call: Call) -> list[Operation]:
    return [UnsuppressPerson(person=call.require_user("User Unsuppressed"))]


def _object_deleted(call: Call) -> list[Operation]:
    object_type_id, object_id = _object(call, "Object Deleted")
    return [DeleteObject(object_type_id=object_type_id, object_id=object_id)]


def _relationship_deleted(call: Call) -> list[Operation]:
    person = call.require_user("Relationship Deleted")
    object_type_id, object_id = _object(call, "Relationship Deleted")
    return [DeleteRelationship(object_type_id=object_type_id, object_id=object_id, person=person)]


HANDLERS: dict[str, Callable[[Call], list[Operation]]] = {
    "Device Created or Updated": _device_created_or_updated,
    "Application Installed": _lifecycle_install,
    "Application Opened": _lifecycle_install,
    "Device Deleted": _device_deleted,
    "Application Uninstalled": _application_uninstalled,
    "User Deleted": _user_deleted,
    "User Suppressed": _user_suppressed,
    "User Unsuppressed": _user_unsuppressed,
    "Object Deleted": _object_deleted,
    "Relationship Deleted": _relationship_deleted,
}


# -- devices ----------------------------------------------------------------------------------


def _token(call: Call) -> str | None:
    device = call.context("device")
    token = device.get("token") or call.properties.get("token")
    return token if isinstance(token, str) and token else None


def _require_token(call: Call, what: str) -> str:
    token = _token(call)
    if token is None:
        raise Rejected(f"{what} without a device token (context.device.token)")
    _check_token(token)
    return token


def _check_token(token: str) -> None:
    size = len(token.encode())
    if size > limits.DEVICE_TOKEN_MAX_BYTES:
        raise Rejected(
            f"attribute value limit ({limits.DEVICE_TOKEN_MAX_BYTES} bytes): device token is "
            f"{size} bytes"
        )


def _platform(call: Call) -> Platform | None:
    """`ios` or `android`, from context.os.name (e.g. "iOS", "iPadOS", "Android") or
    context.device.type."""
    for raw in (call.context("os").get("name"), call.context("device").get("type")):
        name = raw.lower() if isinstance(raw, str) else ""
        if "android" in name:
            return "android"
        if name in {"ios", "ipados", "iphone os", "iphone", "ipad"}:
            return "ios"
    return None


def _add_device(
    call: Call,
    person: PersonRef,
    token: str,
    platform: Platform,
    extra: dict[str, Any] | None = None,
) -> AddDevice:
    """The device with Customer.io's reserved attributes filled from the call's context."""
    context = call.message.context
    found = {
        "app_version": call.context("app").get("version"),
        "device_os": call.context("os").get("version"),
        "device_model": call.context("device").get("model"),
        "device_locale": context.get("locale"),
    }
    found.update({k: v for k, v in (extra or {}).items() if k != "token"})
    attributes: dict[str, str] = {}
    for key, value in found.items():
        if value is None:
            continue
        text = _as_text(value)
        attributes[key] = cut_utf8(text, limits.ATTRIBUTE_VALUE_MAX_BYTES)
        if attributes[key] != text:
            call.adjustments.append(
                f"device attribute '{key}' cut to {limits.ATTRIBUTE_VALUE_MAX_BYTES} bytes "
                "(attribute value limit)"
            )
    return AddDevice(
        person=person,
        token=token,
        platform=platform,
        last_used=call.seconds(),
        attributes=attributes,
    )


def _as_text(value: Any) -> str:
    """Device attribute values are strings in Customer.io (`push_enabled`: "true"/"false")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


# -- objects ----------------------------------------------------------------------------------


def _object(call: Call, what: str) -> tuple[str, str]:
    """The object an Object/Relationship Deleted event names: `properties.objectId` (or
    `object_id`, or `context.groupId`), typed by `properties.objectTypeId` (or `object_type_id`,
    or the connection's `object_type_id`)."""
    props = call.properties
    object_id = (
        props.get("objectId") or props.get("object_id") or call.message.context.get("groupId")
    )
    if object_id is None or object_id == "":
        raise Rejected(f"{what} without properties.objectId")
    object_type = props.get("objectTypeId") or props.get("object_type_id")
    object_id = str(object_id)
    check_id(object_id, "properties.objectId")
    return (str(object_type) if object_type else call.settings.object_type_id), object_id
