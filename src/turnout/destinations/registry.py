"""Destination plugins by name: how configuration, the dashboard and the CLI find a destination.

This is the one place outside a destination's own folder that names one. A new destination is
one more folder of the same shape as `customerio/` and one line in `_BUILT_IN`; a destination
kept outside Turnout's source registers itself with `register` from a module named in
`TURNOUT_DESTINATION_MODULES` (comma-separated importable modules, imported when the registry
is first loaded), so a `turnout serve` process finds it with no change here.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from turnout.destinations.base import Destination
from turnout.destinations.base import parse_settings as _parse
from turnout.destinations.customerio import CustomerIO
from turnout.destinations.webhook import Webhook

MODULES_VARIABLE = "TURNOUT_DESTINATION_MODULES"

# Listed in this order wherever destinations are offered (first: the default of the API).
_BUILT_IN: tuple[Destination, ...] = (CustomerIO(), Webhook())
DEFAULT = _BUILT_IN[0].name


class UnknownDestination(KeyError):
    """A connection names a destination type Turnout does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown destination {self.name!r}; known: {', '.join(names())}"


_DESTINATIONS: dict[str, Destination] = {d.name: d for d in _BUILT_IN}


def register(destination: Destination) -> Destination:
    """Add a destination (a plugin module calls this when imported); a name is taken once."""
    known = _DESTINATIONS.get(destination.name)
    if known is not None and known is not destination and type(known) is not type(destination):
        raise ValueError(f"destination {destination.name!r} is already registered")
    _DESTINATIONS[destination.name] = destination
    return destination


def load_modules(spec: str | None = None) -> None:
    """Import the plugin modules named in `spec` (default: `TURNOUT_DESTINATION_MODULES`).

    A module that cannot be imported stops the start with its name: a connection silently
    losing its destination would hold its calls with no word why.
    """
    text = os.environ.get(MODULES_VARIABLE, "") if spec is None else spec
    for module in (part.strip() for part in text.split(",")):
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"{MODULES_VARIABLE}: cannot import {module!r}: {exc}") from exc


def get(name: str) -> Destination:
    """The destination registered as `name` (e.g. "webhook")."""
    try:
        return _DESTINATIONS[name]
    except KeyError:
        raise UnknownDestination(name) from None


def names() -> list[str]:
    """Every registered destination name, sorted."""
    return sorted(_DESTINATIONS)


def all_destinations() -> list[Destination]:
    """Every registered destination, built-in ones first, then plugins as registered."""
    return list(_DESTINATIONS.values())


def parse_settings(name: str, raw: dict[str, Any]) -> Any:
    """The settings struct of destination `name`: `UnknownDestination`, or a `SettingsError`
    naming the field."""
    return _parse(get(name), raw)


load_modules()
