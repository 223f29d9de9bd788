"""The stored message as the dict a playbook works on, and back.

`as_dict` gives what `msgspec.to_builtins(message)` gives (Segment's camelCase names, fields at
their default left out) but shallow: `traits`, `properties`, `context` and `integrations` are the
message's own dicts, not copies. That is safe because applying a playbook never changes its
input (it copies what it changes), and it saves the deep copy of every message's context, which
costs more than the rules themselves.

Both directions run once per message in a lane, so both are generated code (see codegen.py):
`as_dict` is written once from `Message`'s fields, and `as_message` once per set of changed
fields. The source names only `Message`'s own attributes and made-up locals; every value is a
name in the namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
import msgspec.inspect

from turnout.playbooks.codegen import Source
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


def emit_as_dict(
    source: Source, message: str, target: str, wire_names: frozenset[str] | None = None
) -> None:
    """Lines setting `target` to the dict `as_dict` makes of the Message in `message`, or, given
    `wire_names`, to just those of its fields (a lane's playbook reads nothing else): field by
    field in `Message`'s order, each read as an attribute, written unless it is None or at its
    default. For a default of None, `is not None` says just that; for an empty default (`{}`,
    `""`) so does the value's truth, at a fraction of the cost of comparing it; any other default
    is compared with `!=`. The required fields (first in `Message`) are written at once, in order,
    while none of them is None."""
    chosen = [
        (index, field) for index, field in enumerate(_FIELDS)
        if wire_names is None or field[1] in wire_names
    ]  # fmt: skip
    required = [(f"_v{index}", field) for index, field in chosen if field[2] is msgspec.UNSET]
    for value, (name, _, _) in required:
        assert name.isidentifier()  # an attribute of Message
        source.line(f"{value} = {message}.{name}")
    present = " and ".join(f"{value} is not None" for value, _ in required)
    with source.block(f"if {present or 'True'}"):
        pairs = ", ".join(f"{source.name(wire, 'n')}: {value}" for value, (_, wire, _) in required)
        source.line(f"{target} = {{{pairs}}}")
    with source.block("else"):
        source.line(f"{target} = {{}}")
        for value, (_, wire, _) in required:
            with source.block(f"if {value} is not None"):
                source.line(f"{target}[{source.name(wire, 'n')}] = {value}")
    for index, (name, wire, default) in chosen:
        if default is msgspec.UNSET:
            continue  # required: written above
        assert name.isidentifier()
        value = f"_v{index}"
        source.line(f"{value} = {message}.{name}")
        if default is None:
            test = f"{value} is not None"
        elif type(default) in (dict, str) and not default:
            test = value
        else:
            test = f"{value} is not None and {value} != {source.name(default, 'd')}"
        with source.block(f"if {test}"):
            source.line(f"{target}[{source.name(wire, 'n')}] = {value}")


def _generate_as_dict() -> Callable[[Message], dict[str, Any]]:
    source = Source()
    with source.block("def as_dict(message)"):
        emit_as_dict(source, "message", "data")
        source.line("return data")
    return source.function("as_dict")


as_dict: Final = _generate_as_dict()
as_dict.__doc__ = """The message as a playbook reads it, sharing its nested objects (see the
module's note): `msgspec.to_builtins(message)` without the copies."""
as_dict.__module__ = __name__


def as_message(
    data: dict[str, Any], original: Message | None = None, fields: Iterable[str] | None = None
) -> Message:
    """A shaped message back as the typed message destinations map; msgspec.ValidationError
    (naming the field: `... - at $.userId`) when the playbook or a function made it invalid.

    Given the `original` it was shaped from and the top-level `fields` changed (`Shaped.fields`),
    only those are checked and replaced in a copy of the original: no whole-message validation,
    no copy of what did not change."""
    if original is not None:
        try:
            convert = _CONVERTERS.get(fields)  # type: ignore[call-overload]
        except TypeError:  # names in a set or a list
            convert = None
        if convert is None and fields is not None:
            convert = _converter(frozenset(fields))
        if convert is not None:
            typed = convert(data, original)
            assert typed is not None  # not `quick`: msgspec raised instead
            return typed
    return msgspec.convert(data, Message)


def _converter(fields: frozenset[str]) -> Callable[[dict[str, Any], Message], Message | None]:
    """The conversion for this set of changed fields, generated once per set of the message's
    fields among them (names that are not a message field are dropped, as a full conversion
    drops them)."""
    known = frozenset(name for name in fields if name in _BY_WIRE_NAME)
    convert = _CONVERTERS.get(known)
    if convert is None:
        convert = _generate_converter(known)
        if len(_CONVERTERS) < _MAX_CONVERTERS:
            _CONVERTERS[known] = convert
    if len(_CONVERTERS) < _MAX_CONVERTERS:
        _CONVERTERS[fields] = convert
    return convert


def quick_converter(fields: frozenset[str]) -> Callable[[dict[str, Any], Message], Message | None]:
    """`as_message(data, original, fields)` when every changed value passes its quick check,
    else None (`as_message` then says why): for a caller that has a cheaper way to report."""
    return _generate_converter(frozenset(fields) & _BY_WIRE_NAME.keys(), quick=True)


def _generate_converter(
    known: frozenset[str], quick: bool = False
) -> Callable[[dict[str, Any], Message], Message | None]:
    """Each changed field read (a removed one back at its default, a fresh {} for a dict),
    checked quickly against its type, and the original copied with them; any value that fails
    the quick check sends the whole dict through msgspec, the authority, which says why (or,
    `quick`, gives None)."""
    source = Source({"_ABSENT": _ABSENT, "_convert": msgspec.convert, "_Message": Message,
                     "_replace": msgspec.structs.replace})  # fmt: skip
    changes = []
    with source.block("def convert(data, original)"):
        for index, wire_name in enumerate(sorted(known)):
            name, default, info = _BY_WIRE_NAME[wire_name]
            assert name.isidentifier()  # an attribute of Message: the keyword written below
            value = f"_v{index}"
            key = source.name(wire_name, "n")
            if default is None:  # removed: back to the default, which `get` gives
                source.line(f"{value} = data.get({key})")
            else:
                source.line(f"{value} = data.get({key}, _ABSENT)")
                with source.block(f"if {value} is _ABSENT"):
                    fresh = "{}" if type(default) is dict else source.name(default, "d")
                    source.line(f"{value} = {fresh}")
            with source.block(f"if not ({_check(info, value, source)})"):
                source.line("return None" if quick else "return _convert(data, _Message)")
            changes.append(f"{name}={value}")
        source.line(f"return _replace(original, {', '.join(changes)})" if changes
                    else "return original")  # fmt: skip
    return source.function("convert")


def _check(info: msgspec.inspect.Type, value: str, source: Source) -> str:
    """An expression testing quickly that `value` fits a field's type, for the types Message
    uses; for anything it does not know it is False, which sends the message through the full
    conversion instead."""
    if isinstance(info, msgspec.inspect.StrType):
        return f"{value}.__class__ is str"
    if isinstance(info, msgspec.inspect.NoneType):
        return f"{value} is None"
    if isinstance(info, msgspec.inspect.LiteralType):
        choices = source.name(frozenset(info.values), "choices")
        return f"({value}.__class__ is str and {value} in {choices})"
    if isinstance(info, msgspec.inspect.UnionType):
        tests = [_check(each, value, source) for each in info.types]
        return "(" + " or ".join(tests) + ")"
    if isinstance(info, msgspec.inspect.DictType) and isinstance(
        info.key_type, msgspec.inspect.StrType
    ) and isinstance(info.value_type, msgspec.inspect.AnyType):
        # Keys need no check: a playbook writes only string keys, and when a function ran
        # (which could write others) `fields` is None and everything is converted.
        return f"{value}.__class__ is dict"
    return "False"


def _by_wire_name() -> dict[str, tuple[str, Any, msgspec.inspect.Type]]:
    """wire name -> (attribute, value when absent (UNSET: required), its type)."""
    info = msgspec.inspect.type_info(Message)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        field.encode_name: (field.name, default, field.type)
        for field, (_, _, default) in zip(info.fields, _FIELDS, strict=True)
    }


_BY_WIRE_NAME: Final = _by_wire_name()
_ABSENT: Final = object()
# Conversions by the set of fields changed (as given, and as known fields): a playbook changes a
# handful of sets; the bound only keeps names no message has from growing it.
_CONVERTERS: dict[frozenset[str], Callable[[dict[str, Any], Message], Message | None]] = {}
_MAX_CONVERTERS: Final = 256
