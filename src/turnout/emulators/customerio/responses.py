"""The exact bytes Customer.io answers with.

Recorded responses (ref §3, §7) show JSON with ``Content-Type: application/json; charset=utf-8``;
success is ``{}`` plus a newline, errors are pretty-printed with a 2-space indent and a trailing
newline. Clients that compare bodies byte for byte should see the same here.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

JSON_TYPE = b"application/json; charset=utf-8"

# Headers the live API sends on every answer (ref §3, "Other success headers seen").
BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", JSON_TYPE),
    (b"access-control-allow-origin", b"*"),
    (b"cache-control", b"no-cache, no-store, must-revalidate, max-age=0"),
]

OK_BODY = b"{}\n"


class Reply(msgspec.Struct):
    """A response to send: status, body and any extra headers (e.g. Retry-After)."""

    status: int
    body: bytes = OK_BODY
    headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)


OK = Reply(200)


def pretty(obj: Any) -> bytes:
    """Customer.io's error formatting: 2-space indent, trailing newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def meta_error(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    """A v1 error with a single message: ``{"meta": {"error": ...}}``."""
    return Reply(status, pretty({"meta": {"error": message}}), headers or [])


def meta_errors(messages: list[str]) -> Reply:
    """A v1 validation failure listing every violation at once (ref §7.1)."""
    return Reply(400, pretty({"meta": {"errors": messages}}))


def v2_errors(status: int, errors: list[dict[str, Any]]) -> Reply:
    """A v2 failure: ``{"errors": [...]}``, no ``meta`` wrapper (ref §7.2)."""
    return Reply(status, pretty({"errors": errors}))


UNAUTHORIZED = meta_error(401, "Unauthorized request")
NOT_FOUND = meta_error(404, "Not found")
