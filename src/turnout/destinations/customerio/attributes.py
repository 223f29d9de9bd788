"""Fitting attribute maps to Customer.io's limits, and splitting them across operations.

What can be fitted is fitted and reported (a string value cut at a character boundary); what
cannot (an over-long name, a nested value over the value limit) raises `Rejected` naming the limit.
Each value is JSON-encoded once, here: the sizes measured while fitting are what splitting and
an object's size check use, so large traits are not encoded again for each limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnout.destinations.customerio import limits
from turnout.destinations.customerio.values import cut_utf8, json_bytes


class Rejected(Exception):
    """The message can never be delivered as it is; the text names the limit it breaks."""


class Filtered(Exception):
    """A rule says this message has nothing to do in Customer.io; the text names the rule."""


@dataclass(slots=True)
class Fitted:
    """Attributes within the name and value limits, each with the JSON size of its
    `"name":value` entry as it will be sent."""

    values: dict[str, Any]
    entries: dict[str, int]

    @property
    def json_size(self) -> int:
        """Bytes of `values` as one JSON object: the entries, their commas and the braces."""
        return 2 + sum(self.entries.values()) + max(len(self.entries) - 1, 0)


def fit_attributes(attributes: dict[str, Any], what: str, adjustments: list[str]) -> Fitted:
    """`attributes` within the name and value limits; `what` names them in messages ("trait").

    Customer.io counts a string value in UTF-8 bytes and anything else in JSON bytes.
    """
    values: dict[str, Any] = {}
    entries: dict[str, int] = {}
    for name, value in attributes.items():
        name_bytes = len(name.encode())
        if name_bytes > limits.ATTRIBUTE_NAME_MAX_BYTES:
            raise Rejected(
                f"attribute name limit ({limits.ATTRIBUTE_NAME_MAX_BYTES} bytes): {what} name "
                f"{_preview(name)} is {name_bytes} bytes"
            )
        if isinstance(value, str):
            size = len(value.encode())
            if size > limits.ATTRIBUTE_VALUE_MAX_BYTES:
                value = cut_utf8(value, limits.ATTRIBUTE_VALUE_MAX_BYTES)
                adjustments.append(
                    f"{what} '{name}' cut from {size} to {len(value.encode())} bytes "
                    f"(attribute value limit {limits.ATTRIBUTE_VALUE_MAX_BYTES} bytes)"
                )
            encoded = len(json_bytes(value))
        else:
            encoded = len(json_bytes(value))
            if encoded > limits.ATTRIBUTE_VALUE_MAX_BYTES:
                raise Rejected(
                    f"attribute value limit ({limits.ATTRIBUTE_VALUE_MAX_BYTES} bytes): {what} "
                    f"'{name}' is {encoded} bytes of JSON and cannot be cut"
                )
        values[name] = value
        entries[name] = len(json_bytes(name)) + 1 + encoded
    return Fitted(values, entries)


def check_id(identifier: str, field: str) -> None:
    """Reject an id Customer.io cannot store: cutting it would address someone else."""
    size = len(identifier.encode())
    if size > limits.ID_MAX_BYTES:
        raise Rejected(f"id limit ({limits.ID_MAX_BYTES} bytes): {field} is {size} bytes")


def check_value(value: str, field: str) -> None:
    size = len(value.encode())
    if size > limits.ATTRIBUTE_VALUE_MAX_BYTES:
        raise Rejected(
            f"attribute value limit ({limits.ATTRIBUTE_VALUE_MAX_BYTES} bytes): {field} is "
            f"{size} bytes"
        )


def split_attributes(
    attributes: Fitted,
    max_count: int,
    item_size: Callable[[dict[str, Any]], int],
) -> list[dict[str, Any]]:
    """Consecutive parts of `attributes`, each with at most `max_count` keys and each making a v2
    item (as measured by `item_size` of an empty part plus the entries' measured sizes) within
    the item limit.

    One entry always fits (name <= 150 B, value <= 1000 B after `fit_attributes`), so every
    attribute is sent; an empty map still yields one (empty) part, since an identify without
    traits creates the person.
    """
    base = item_size({})
    parts: list[dict[str, Any]] = [{}]
    size = base
    for name, value in attributes.values.items():
        entry = attributes.entries[name]
        current = parts[-1]
        grown = size + entry + (1 if current else 0)
        if current and (len(current) >= max_count or grown > limits.V2_ITEM_MAX_BYTES):
            current = {}
            parts.append(current)
            grown = base + entry
        current[name] = value
        size = grown
    return parts


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
