"""Destination plugins by name: how configuration and the dashboard find a destination type.

A new destination is one more folder of the same shape as `customerio/` and one line here.
"""

from __future__ import annotations

from turnout.destinations.base import Destination
from turnout.destinations.customerio import CustomerIO
from turnout.destinations.webhook import Webhook


class UnknownDestination(KeyError):
    """A connection names a destination type Turnout does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown destination {self.name!r}; known: {', '.join(names())}"


_DESTINATIONS: dict[str, Destination] = {
    destination.name: destination for destination in (CustomerIO(), Webhook())
}


def get(name: str) -> Destination:
    """The destination registered as `name` (e.g. "customerio")."""
    try:
        return _DESTINATIONS[name]
    except KeyError:
        raise UnknownDestination(name) from None


def names() -> list[str]:
    """Every registered destination name, sorted."""
    return sorted(_DESTINATIONS)
