"""The value transforms a rule's `transform` action names: `lower`, `sha256`, `truncate:40`...

Each is a function from a value to a new value that raises `CannotApply` (with the reason an
adjustment will show) for a value it does not take, so that a playbook never fails a message over
one field: the field is left as it was and the reason is recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from turnout.playbooks.paths import describe
from turnout.spec import timestamps
from turnout.spec.incoming import InvalidMessage

Transform = Callable[[Any], Any]


class CannotApply(ValueError):
    """This value cannot be transformed; the message says why (`a number, not a string`)."""


def _string(value: Any, name: str) -> str:
    if type(value) is not str:
        raise _not_a_string(value, name)
    return value


def _not_a_string(value: Any, name: str) -> CannotApply:
    return CannotApply(f"{describe(value)}, not a string ({name} takes strings)")


# The commonest transforms test their value inline: one call per value, not two.


def _lower(value: Any) -> str:
    if type(value) is str:
        return value.lower()
    raise _not_a_string(value, "lower")


def _upper(value: Any) -> str:
    if type(value) is str:
        return value.upper()
    raise _not_a_string(value, "upper")


def _trim(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    raise _not_a_string(value, "trim")


def _json_number(value: int | float) -> str:
    return json.dumps(value)


def _sha256(value: Any) -> str:
    """Lowercase hex SHA-256 of the value's UTF-8 text; a number is hashed as its JSON text
    (`42`, `19.99`), so the hash matches one computed elsewhere from the JSON payload."""
    if type(value) in (int, float):
        text = _json_number(value)
    elif type(value) is str:
        text = value
    else:
        raise CannotApply(f"{describe(value)}, not a string or a number (sha256 takes those)")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


def _to_number(value: Any) -> int | float:
    """A number from a decimal string (`"42"` -> 42, `" 19.90 "` -> 19.9); numbers unchanged."""
    if type(value) in (int, float):
        return value
    if type(value) is str:
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
        raise CannotApply(f"{_excerpt(value)} is not a number")
    raise CannotApply(f"{describe(value)}, not a string or a number (to_number takes those)")


def _to_string(value: Any) -> str:
    """Text from a string, number or boolean: `42` -> `"42"`, `true` -> `"true"` (JSON text)."""
    if type(value) is str:
        return value
    if type(value) in (int, float, bool):
        return json.dumps(value)
    raise CannotApply(f"{describe(value)} (to_string takes strings, numbers and booleans)")


_TRUE: Final = frozenset({"true", "yes", "y", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "n", "0", "off"})


def _to_bool(value: Any) -> bool:
    """A boolean from `true`/`false`, `"yes"`/`"no"`, `"1"`/`"0"`, `"on"`/`"off"` (any case)
    or the numbers 1 and 0."""
    if type(value) is bool:
        return value
    if type(value) is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise CannotApply(f"{_excerpt(value)} is not a yes/no value")
    if type(value) in (int, float):
        if value in (0, 1):
            return bool(value)
        raise CannotApply(f"{_excerpt(value)} is not a yes/no value (numbers: 1 or 0)")
    raise CannotApply(f"{describe(value)}, not a yes/no value")


def _unix_seconds(value: Any) -> int:
    """Whole seconds since 1970 (rounded down) from an ISO-8601 date or date-time; a time without
    an offset is UTC."""
    text = _string(value, "unix_seconds")
    try:
        moment = timestamps.parse(text, "value")
    except InvalidMessage:
        raise CannotApply(f"{_excerpt(value)} is not an ISO-8601 date-time") from None
    return math.floor(moment.timestamp())


def _truncate(limit: int) -> Transform:
    def truncate(value: Any) -> str:
        text = _string(value, "truncate")
        return text[:limit]

    return truncate


def _excerpt(value: Any) -> str:
    text = value if type(value) is str else json.dumps(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


NAMES: Final[dict[str, Transform]] = {
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
    "sha256": _sha256,
    "to_number": _to_number,
    "to_string": _to_string,
    "to_bool": _to_bool,
    "unix_seconds": _unix_seconds,
}
ALL: Final = (*NAMES, "truncate:N")


def compile_transform(spec: Any) -> Transform:
    """The transform named by `spec` (`"lower"`, `"truncate:40"`); ValueError naming the
    choices for anything else."""
    if type(spec) is not str:
        raise ValueError(f"a transform is named by a string, got {describe(spec)}")
    if spec in NAMES:
        return NAMES[spec]
    name, colon, argument = spec.partition(":")
    if name.strip() == "truncate":
        if not colon or not argument.strip().isdigit() or not argument.strip().isascii():
            raise ValueError(f"{spec!r}: truncate needs a length, as in truncate:40")
        return _truncate(int(argument))
    raise ValueError(f"unknown transform {spec!r} (expected one of: {', '.join(ALL)})")

