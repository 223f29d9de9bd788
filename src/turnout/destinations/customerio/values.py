"""Value conversions Customer.io needs: unix-second timestamps, byte sizes, character-safe cuts.

Customer.io's date conditions only match unix seconds (ISO strings and milliseconds are stored but
never match a segment), and its limits are in UTF-8 bytes, not characters.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from turnout.spec import timestamps

# ISO-8601 date or date-time as SDKs send them: `2024-05-01`, `2024-05-01T12:34:56.789Z`,
# `2024-05-01 12:34:56+02:00`, `...-0800`. Anything else (`25 Mar 2015`, `... PDT`, plain numbers)
# is left alone: guessing at free-form dates turns ordinary strings into wrong numbers. This only
# decides which strings are dates; reading them is `spec.timestamps.read`, Turnout's one reading.
_ISO_8601 = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?)?$"
)

# A numeric timestamp above this is in milliseconds: 1e11 seconds is the year 5138, while 1e11
# milliseconds is 1973, so no real date is ambiguous.
_MILLISECONDS_ABOVE = 100_000_000_000

_json = msgspec.json.Encoder()


def iso_to_unix(value: str) -> int | None:
    """Unix seconds for an ISO-8601 string (naive times are UTC), or None when it is not one."""
    if not _ISO_8601.match(value):
        return None
    parsed = timestamps.read(value)
    return None if parsed is None else int(parsed.timestamp())


def to_unix_seconds(value: Any) -> int | None:
    """Unix seconds for a timestamp given as ISO-8601, seconds or milliseconds; None if not one.

    A number (or a string of digits) in seconds stays seconds; one above 1e11 is milliseconds.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            number = float(text)
        else:
            return iso_to_unix(text)
    else:
        return None
    if number < 0:
        return None
    if number > _MILLISECONDS_ABOVE:
        number /= 1000
    return int(number)


def convert_iso_strings(value: Any) -> Any:
    """A copy of `value` with every ISO-8601 string (at any depth) replaced by unix seconds."""
    if isinstance(value, str):
        seconds = iso_to_unix(value)
        return value if seconds is None else seconds
    if isinstance(value, dict):
        return {key: convert_iso_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [convert_iso_strings(item) for item in value]
    return value


def byte_size(value: Any) -> int:
    """Size as Customer.io counts it: UTF-8 bytes of a string, JSON bytes of anything else."""
    if isinstance(value, str):
        return len(value.encode())
    return len(json_bytes(value))


def json_bytes(value: Any) -> bytes:
    return _json.encode(value)


def cut_utf8(text: str, max_bytes: int) -> str:
    """`text` shortened to at most `max_bytes` UTF-8 bytes without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")
