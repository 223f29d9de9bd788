"""msgspec's validation errors in one wording, "field: what is wrong", for every door.

msgspec says ``Expected `int` >= 1 - at `$.server.port` `` or ``Object missing required field
`url` ``; a person reading an error wants the field first, in the names they wrote. The tracking
API's rejects, the configuration file, and connection settings (file, API, dashboard) all word
their errors through here, so one input gets one message wherever it was sent.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import msgspec

REQUIRED = "required"
UNKNOWN_FIELD = "unknown field"

_AT = " - at `$"
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>[^`]+)`")
# msgspec names an optional object "`object | null`", which reads poorly to a person.
_NOT_AN_OBJECT = "expected `object | null`, got `"
_AN = {"array": "an array", "str": "a string", "bool": "a boolean", "int": "a number",
       "float": "a number"}  # fmt: skip


class FieldError(NamedTuple):
    """Where a value failed validation ("server.port", "batch[2].event"; "" for the whole
    document) and why ("expected `int` >= 1", "required")."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def field_error(error: msgspec.ValidationError | str) -> FieldError:
    """The field a msgspec validation error is about, and what is wrong with it."""
    reason, _, path = str(error).partition(_AT)
    field = path.removesuffix("`").lstrip(".")
    if match := _MISSING.fullmatch(reason):
        return FieldError(_join(field, match["name"]), REQUIRED)
    if match := _UNKNOWN.fullmatch(reason):
        return FieldError(_join(field, match["name"]), UNKNOWN_FIELD)
    reason = reason[:1].lower() + reason[1:]
    if reason.startswith(_NOT_AN_OBJECT):
        got = reason.removeprefix(_NOT_AN_OBJECT).rstrip("`")
        reason = f"expected an object, got {_AN.get(got, 'a number')}"
    return FieldError(field, reason)


def field_message(error: msgspec.ValidationError | str, where: str = "", whole: str = "") -> str:
    """ "field: what is wrong". `where` is put before the field (a batch item's "batch[2].");
    `whole` names the document when the error is about no field in particular ("body")."""
    found = field_error(error)
    if found.field:
        return f"{where}{found.field}: {found.reason}"
    name = where.rstrip(".") or whole
    return f"{name}: {found.reason}" if name else found.reason


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
