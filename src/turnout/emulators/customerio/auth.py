"""HTTP Basic authentication as the Track API does it (ref §2).

The username is the site id and the password the Track API key. go-customerio encodes with the
URL-safe base64 alphabet and padding varies between clients, so both alphabets are accepted with
or without padding. The accepted credentials can change while the server runs (to simulate a
revoked key), so the check reads them from the live config each time; the last header that
passed is cached to keep the common case to one string comparison.
"""

from __future__ import annotations

import base64
import binascii

from .config import EmulatorConfig


def decode_basic(header: str) -> tuple[str, str] | None:
    """Return (username, password) from a ``Basic`` Authorization header, or None if malformed."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    token = token.strip().replace("-", "+").replace("_", "/")
    token += "=" * (-len(token) % 4)
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


class Authenticator:
    """Checks Authorization headers against the credentials currently configured."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._good: tuple[str, str, str] | None = None  # (header, site_id, api_key)

    def check(self, header: str | None) -> bool:
        """True when `header` carries the configured site id and API key."""
        if header is None:
            return False
        site_id, api_key = self.config.site_id, self.config.api_key
        good = self._good
        if good is not None and good == (header, site_id, api_key):
            return True
        if decode_basic(header) == (site_id, api_key):
            self._good = (header, site_id, api_key)
            return True
        return False
