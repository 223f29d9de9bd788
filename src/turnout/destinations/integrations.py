"""Segment's `integrations` object: whether a call is meant for a given destination.

Every destination reads it the same way, so the rule lives once: an explicit key for the
destination decides (false skips it; true or an options object sends), and without one,
`"All": false` skips. Keys are compared without case, spaces or punctuation, so
"Customer.io" and "customerio" name the same destination.
"""

from __future__ import annotations

import re
from typing import Any


def own_keys(*names: str) -> frozenset[str]:
    """The normalised keys by which calls may name a destination."""
    return frozenset(map(normalise_key, names))


def filtered_by_integrations(
    integrations: dict[str, Any], keys: frozenset[str], name: str, key: str
) -> str | None:
    """The reason to skip a call whose `integrations` disables the destination named by `keys`,
    else None. The reason calls it `name` and quotes its usual key `key` ("Customer.io")."""
    own = [value for given, value in integrations.items() if normalise_key(given) in keys]
    if own:
        if any(value is False for value in own):
            return f'integrations: {name} disabled ("{key}": false)'
        return None
    if integrations.get("All") is False:
        return f'integrations: all destinations disabled ("All": false) and {key} not enabled'
    return None


def normalise_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())
