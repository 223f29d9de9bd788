"""A destination's settings as form fields, and form values back into settings.

The wording, order, kind and grouping come from the destination's `fields`; bounds (min/max) are
read from its settings struct, which stays the authority on validation. So a new setting or a
new destination appears in the dashboard with no template change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec.inspect as mi

from turnout.destinations.base import Destination, SettingField

TABLE_ROWS_EMPTY = 2  # blank name/value rows a table offers below its saved rows
# The input a field kind is shown with (secret and table are told apart by `secret`/`kind`).
_INPUTS = {
    "text": "text",
    "secret": "password",
    "number": "number",
    "choice": "select",
    "boolean": "checkbox",
    "url": "url",
    "table": "table",
}


@dataclass(slots=True)
class FormField:
    name: str
    label: str
    help: str
    kind: str  # text | password | number | checkbox | select | url | table
    required: bool
    default: Any
    secret: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = ""
    advanced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "help": self.help,
            "type": self.kind,
            "required": self.required,
            "default": self.default,
            "secret": self.secret,
            "advanced": self.advanced,
            "choices": list(self.choices),
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


def form_fields(destination: Destination) -> list[FormField]:
    """The destination's fields, in its order, with the bounds its settings struct declares."""
    info = mi.type_info(destination.settings_type)
    assert isinstance(info, mi.StructType)
    types = {f.name: f.type for f in info.fields}
    return [_field(f, types.get(f.name), destination) for f in destination.fields]


def _field(spec: SettingField, typ: mi.Type | None, destination: Destination) -> FormField:
    low, high, step = _bounds(typ) if typ is not None else (None, None, "")
    return FormField(
        name=spec.name,
        label=spec.label,
        help=spec.help,
        kind=_INPUTS[spec.kind],
        required=spec.required,
        default=spec.default,
        secret=spec.kind == "secret" or spec.name in destination.secret_fields,
        choices=spec.choices,
        minimum=low,
        maximum=high,
        step=step,
        advanced=spec.advanced,
    )


def _bounds(t: mi.Type) -> tuple[float | None, float | None, str]:
    if isinstance(t, mi.UnionType):
        inner = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return _bounds(inner[0]) if len(inner) == 1 else (None, None, "")
    if isinstance(t, mi.IntType):
        return _num(t.ge, t.gt), _num(t.le, t.lt), "1"
    if isinstance(t, mi.FloatType):
        return _num(t.ge, t.gt), _num(t.le, t.lt), "any"
    return None, None, ""


def _num(inclusive: float | None, exclusive: float | None) -> float | None:
    return inclusive if inclusive is not None else exclusive


def table_rows(value: Any) -> list[tuple[str, str]]:
    """A table setting's saved rows plus blank ones to add more (values as given: the caller
    blanks secret ones)."""
    rows = [(str(k), str(v)) for k, v in (value or {}).items()] if isinstance(value, dict) else []
    return rows + [("", "")] * TABLE_ROWS_EMPTY


def settings_from_form(fields: list[FormField], form: dict[str, list[str]]) -> dict[str, Any]:
    """Form values to a settings dict: empty optional fields are left out (the default holds),
    checkboxes read their last value (a hidden "false" precedes each box), a table is read from
    its `<name>.name` / `<name>.value` pairs (rows without a name are dropped)."""
    settings: dict[str, Any] = {}
    for f in fields:
        if f.kind == "table":
            names = form.get(f"{f.name}.name", [])
            values = form.get(f"{f.name}.value", [])
            rows = {n.strip(): v.strip() for n, v in zip(names, values, strict=False) if n.strip()}
            if rows or names:
                settings[f.name] = rows
            continue
        values = form.get(f.name, [])
        value = values[-1].strip() if values else ""
        if f.kind == "checkbox":
            settings[f.name] = value == "true"
        elif value != "" or f.secret:
            settings[f.name] = value
    return settings
