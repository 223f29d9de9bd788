"""A destination's settings as form fields, and form values back into settings.

Read from the settings struct itself (names, types, bounds, defaults), so a new setting or a new
destination appears in the dashboard with no template change; only the human wording below is
written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import msgspec.inspect as mi

from turnout.destinations.base import Destination

# Wording the struct cannot carry: label, help, and choices for free-text fields with a fixed set.
_WORDING: dict[str, tuple[str, str]] = {
    "site_id": ("Site ID", "Workspace Settings > API Credentials > Track API keys."),
    "api_key": ("API key", "The Track API key. Stored encrypted; never shown again."),
    "region": ("Region", "The data centre of the workspace."),
    "track_url": (
        "Track API URL",
        "Replaces the region's URL (a proxy, the emulator). Leave empty for Customer.io.",
    ),
    "max_traits_per_identify": (
        "Traits per identify",
        "More traits are sent as consecutive updates of the same person.",
    ),
    "convert_timestamps": (
        "Convert timestamps",
        "ISO-8601 strings become unix seconds, so Customer.io date conditions work.",
    ),
    "object_type_id": ("Object type ID", "The object type that group calls create or update."),
    "api": ("API", "v2 sends many operations per batch request; v1 one request per operation."),
    "batch_size": ("Batch size", "Operations per v2 batch request."),
    "request_timeout": ("Request timeout (s)", "How long to wait for an answer before retrying."),
}
_CHOICES: dict[str, tuple[str, ...]] = {"region": ("us", "eu")}


@dataclass(slots=True)
class FormField:
    name: str
    label: str
    help: str
    kind: str  # text | password | number | checkbox | select | url
    required: bool
    default: Any
    secret: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = ""
    advanced: bool = field(default=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "help": self.help,
            "type": self.kind,
            "required": self.required,
            "default": self.default,
            "secret": self.secret,
            "choices": list(self.choices),
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


def form_fields(destination: Destination) -> list[FormField]:
    info = mi.type_info(destination.settings_type)
    assert isinstance(info, mi.StructType)
    return [_field(f, destination) for f in info.fields]


def _field(info: mi.Field, destination: Destination) -> FormField:
    label, help_text = _WORDING.get(info.name, (info.name.replace("_", " ").capitalize(), ""))
    kind, choices, low, high, step = _kind(info.type)
    if info.name in _CHOICES:
        kind, choices = "select", _CHOICES[info.name]
    secret = info.name in destination.secret_fields
    if secret:
        kind = "password"
    default = None if info.default is msgspec.NODEFAULT else info.default
    return FormField(
        name=info.name,
        label=label,
        help=help_text,
        kind=kind,
        required=info.required,
        default=default,
        secret=secret,
        choices=choices,
        minimum=low,
        maximum=high,
        step=step,
        advanced=not info.required and info.name not in _CHOICES,
    )


def _kind(t: mi.Type) -> tuple[str, tuple[str, ...], float | None, float | None, str]:
    if isinstance(t, mi.UnionType):
        inner = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return _kind(inner[0]) if len(inner) == 1 else ("text", (), None, None, "")
    if isinstance(t, mi.BoolType):
        return "checkbox", (), None, None, ""
    if isinstance(t, mi.LiteralType):
        return "select", tuple(str(v) for v in t.values), None, None, ""
    if isinstance(t, mi.IntType):
        return "number", (), _num(t.ge, t.gt), _num(t.le, t.lt), "1"
    if isinstance(t, mi.FloatType):
        return "number", (), _num(t.ge, t.gt), _num(t.le, t.lt), "any"
    return "text", (), None, None, ""


def _num(inclusive: float | None, exclusive: float | None) -> float | None:
    return inclusive if inclusive is not None else exclusive


def settings_from_form(fields: list[FormField], form: dict[str, list[str]]) -> dict[str, Any]:
    """Form values to a settings dict: empty optional fields are left out (the default holds),
    checkboxes read their last value (a hidden "false" precedes each box)."""
    settings: dict[str, Any] = {}
    for f in fields:
        values = form.get(f.name, [])
        value = values[-1].strip() if values else ""
        if f.kind == "checkbox":
            settings[f.name] = value == "true"
        elif value != "" or f.secret:
            settings[f.name] = value
    return settings
