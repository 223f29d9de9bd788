"""The stored message as the dict a playbook works on, and back.

`as_dict` gives what `msgspec.to_builtins(message)` gives (Segment's camelCase names, fields at
their default left out) but shallow: `traits`, `properties`, `context` and `integrations` are the
message's own dicts, not copies. That is safe because applying a playbook never changes its
input (it copies what it changes), and it saves the deep copy of every message's context, which
costs more than the rules themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
import msgspec.inspect

from turnout.spec.message import Message


def _fields() -> tuple[tuple[str, str, Any], ...]:
    fields = []
    for field in msgspec.structs.fields(Message):
        if field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        elif field.default is not msgspec.NODEFAULT:
            default = field.default
        else:
            default = msgspec.UNSET  # required: always written
        fields.append((field.name, field.encode_name, default))
    return tuple(fields)


_FIELDS: Final = _fields()


_WIRE_DEFAULTS: Final = tuple((wire_name, default) for _, wire_name, default in _FIELDS)


def as_dict(message: Message) -> dict[str, Any]:
    """The message as a playbook reads it, sharing its nested objects (see the module's note)."""
    return {
        wire_name: value
        for (wire_name, default), value in zip(
            _WIRE_DEFAULTS, msgspec.structs.astuple(message), strict=True
        )
        if value is not None and value != default
    }


def as_message(
    data: dict[str, Any], original: Message | None = None, fields: Iterable[str] | None = None
) -> Message:
    """A shaped message back as the typed message destinations map; msgspec.ValidationError
    (naming the field: `... - at $.userId`) when the playbook or a function made it invalid.

    Given the `original` it was shaped from and the top-level `fields` changed (`Shaped.fields`),
    only those are checked and replaced in a copy of the original: no whole-message validation,
    no copy of what did not change."""
    if original is None or fields is None:
        return msgspec.convert(data, Message)
    changes: dict[str, Any] = {}
    for wire_name in fields:
        field = _BY_WIRE_NAME.get(wire_name)
        if field is None:
            continue  # not a message field: dropped, as a full conversion drops it
        name, default, valid = field
        value = data.get(wire_name, _ABSENT)
        if value is _ABSENT:  # removed: back to the field's default (a fresh {} if a dict)
            value = {} if type(default) is dict else default
        if not valid(value):
            return msgspec.convert(data, Message)  # the authority: raises, naming `$.field`
        changes[name] = value
    return msgspec.structs.replace(original, **changes) if changes else original


def _checker(info: msgspec.inspect.Type) -> Callable[[Any], bool]:
    """A quick test that a value fits a field's type, for the types Message uses; anything it
    does not know fails, which sends the message through the full conversion instead."""
    if isinstance(info, msgspec.inspect.StrType):
        return lambda value: type(value) is str
    if isinstance(info, msgspec.inspect.NoneType):
        return lambda value: value is None
    if isinstance(info, msgspec.inspect.LiteralType):
        choices = frozenset(info.values)
        return lambda value: type(value) is str and value in choices
    if isinstance(info, msgspec.inspect.UnionType):
        tests = tuple(_checker(each) for each in info.types if each != msgspec.inspect.NoneType())
        if len(tests) == 1 and len(info.types) == 2:  # `X | None`, the usual optional field
            test = tests[0]
            return lambda value: value is None or test(value)
        tests = tuple(_checker(each) for each in info.types)
        return lambda value: any(test(value) for test in tests)
    if isinstance(info, msgspec.inspect.DictType) and isinstance(
        info.key_type, msgspec.inspect.StrType
    ) and isinstance(info.value_type, msgspec.inspect.AnyType):
        # Keys need no check: a playbook writes only string keys, and when a function ran
        # (which could write others) `fields` is None and everything is converted.
        return lambda value: type(value) is dict
    return lambda value: False


def _by_wire_name() -> dict[str, tuple[str, Any, Callable[[Any], bool]]]:
    """wire name -> (attribute, value when absent (UNSET: required), quick type test)."""
    info = msgspec.inspect.type_info(Message)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        field.encode_name: (field.name, default, _checker(field.type))
        for field, (_, _, default) in zip(info.fields, _FIELDS, strict=True)
    }


_BY_WIRE_NAME: Final = _by_wire_name()
_ABSENT: Final = object()
