"""How Customer.io names people, and how paths carry those names.

A v1 path identifier is classified by its shape (ref §4.2): a ``cio_`` prefix is a cio_id, an
email-shaped value is an email, anything else is an id. Emails compare case-insensitively, so
every lookup goes through :func:`key` to get one normalised form.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote

import msgspec

IdentKind = Literal["id", "email", "cio_id"]

# Deliberately loose, like Customer.io's own partner integration: something@something.tld.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ULID: 26 characters of Crockford base32 (no I, L, O, U); the first must be 0-7 to fit 128 bits.
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")


class Ident(msgspec.Struct, frozen=True):
    """One person identifier: its kind and its value (cio_id values are bare, without ``cio_``)."""

    kind: IdentKind
    value: str

    def key(self) -> tuple[str, str]:
        """The normalised form used in indexes: emails are case-insensitive."""
        return (self.kind, self.value.lower() if self.kind == "email" else self.value)

    def __str__(self) -> str:
        return f"cio_{self.value}" if self.kind == "cio_id" else self.value


def is_email(value: str) -> bool:
    """True when `value` has the shape of an email address."""
    return _EMAIL.match(value) is not None


def is_ulid(value: object) -> bool:
    """True when `value` is a ULID, the only dedupe id format Customer.io accepts (ref §8)."""
    return isinstance(value, str) and _ULID.match(value) is not None


def classify(identifier: str) -> Ident:
    """Read a v1 path identifier the way Customer.io does: by its shape."""
    if identifier.startswith("cio_"):
        return Ident("cio_id", identifier[4:])
    if is_email(identifier):
        return Ident("email", identifier)
    return Ident("id", identifier)


def path_segments(raw_path: bytes) -> list[str]:
    """Split a raw request path into decoded segments.

    Splitting happens *before* percent-decoding, so an identifier such as ``user%2Fwith%2Fslashes``
    stays one segment (``user/with/slashes``), as the official clients intend (ref §3).
    """
    text = raw_path.decode("latin-1")
    return [unquote(part, errors="replace") for part in text.strip("/").split("/")]
