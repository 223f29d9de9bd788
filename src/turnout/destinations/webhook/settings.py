"""The settings of one webhook connection: what the user configures, validated, with defaults.

Type and range errors come from msgspec and name the field (`... - at $.batch_size`); the checks
msgspec cannot express live in `__post_init__`, and their messages start with the field name.
Header values and the signing secret are secrets: no error message ever repeats them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from turnout.destinations.http import public_url

# Standard Webhooks: a secret is "whsec_" + base64 of 24 to 64 random bytes.
SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64
BATCH_SIZE_MAX = 100
# Headers Turnout itself sets on every request: a configured one would contradict them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP field name (RFC 9110)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what may not appear in a field value


class WebhookSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings of a webhook connection (documented in docs/destinations/webhook.md)."""

    # Where every call is POSTed: http:// or https://, credentials in `headers`, not here.
    url: Annotated[str, msgspec.Meta(min_length=1)]
    # Sent with every request (e.g. Authorization). Secret: each value is stored encrypted and
    # shown masked; `env:NAME` in the configuration file reads one from the environment.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Standard Webhooks signing key, "whsec_<base64>"; no signature headers when unset. Secret.
    signing_secret: str | None = None
    # Messages per request. 1: the body is the message itself; more: `{"batch": [...]}`.
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=BATCH_SIZE_MAX)] = 1
    # Seconds to wait for the receiver to answer one request before retrying it later.
    request_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0

    def __post_init__(self) -> None:
        self.url = _check_url(self.url.strip())
        self.headers = _check_headers(self.headers)
        secret = (self.signing_secret or "").strip()
        self.signing_secret = secret or None
        if secret:
            signing_key(secret)

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; header values, the secret and the URL's
        # query (where tokens hide) must not.
        return (
            f"WebhookSettings(url={public_url(self.url)!r}, headers={sorted(self.headers)!r},"
            f" signing_secret={'***' if self.signing_secret else None},"
            f" batch_size={self.batch_size})"
        )


def signing_key(secret: str) -> bytes:
    """The key a `whsec_...` secret stands for; a ValueError naming `signing_secret` if it is
    not one (the message never repeats the secret)."""
    expected = (
        f'signing_secret: must be "{SECRET_PREFIX}" followed by the base64 of'
        f" {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes"
    )
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(expected)
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{expected}; the part after it is not base64") from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValueError(f"{expected}; it decodes to {len(key)} bytes")
    return key


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"url: not a valid address: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url: must start with http:// or https:// and name a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        # Said without repeating the address: it holds a password.
        raise ValueError(
            "url: must not contain a user or password; send credentials in headers"
            " (e.g. Authorization), which are kept secret"
        )
    return url


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name, value in headers.items():
        lower = name.lower()
        if not _TOKEN.match(name):
            raise ValueError(f"headers: {name!r} is not a valid header name")
        if lower in RESERVED_HEADERS:
            raise ValueError(f"headers: {name!r} is set by Turnout and cannot be configured")
        if lower in seen:
            raise ValueError(f"headers: {name!r} is given twice (names ignore case)")
        seen.add(lower)
        if _CONTROL.search(value) or not value.isascii():
            raise ValueError(
                f"headers: the value of {name!r} must be printable ASCII (no line breaks)"
            )
    return headers


def parse_settings(raw: dict[str, Any]) -> WebhookSettings:
    """Validate a settings mapping (from TOML, the store or the API); errors name the field."""
    return msgspec.convert(raw, WebhookSettings)
