"""CORS for browsers on other origins: analytics.js runs on the user's site, not on Turnout's.

analytics-next's default per-event sending adds an `Authorization` header, so its POSTs need a
preflight that allows it; browsers never let `Access-Control-Allow-Headers: *` stand for
`Authorization`, so the requested headers are echoed back. Its batching mode and Customer.io's
fork send `text/plain` with no preflight. No cookies are involved, so credentials stay off.
"""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS = b"GET, POST, OPTIONS"
PREFLIGHT_MAX_AGE = b"86400"  # a day: one preflight per page load at most


@dataclass(frozen=True, slots=True)
class CORSPolicy:
    origins: frozenset[str]

    @classmethod
    def allowing(cls, origins: list[str]) -> CORSPolicy:
        return cls(frozenset(origins))

    def _allow_origin(self, origin: bytes | None) -> bytes | None:
        if origin is None:
            return None
        if "*" in self.origins:
            return b"*"
        return origin if origin.decode("latin-1") in self.origins else None

    def response_headers(self, origin: bytes | None) -> Headers:
        """Headers added to an actual response for `origin` (none when it is not allowed)."""
        allowed = self._allow_origin(origin)
        if allowed is None:
            return []
        if allowed == b"*":
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", allowed), (b"vary", b"Origin")]

    def preflight_headers(self, origin: bytes | None, requested: bytes | None) -> Headers | None:
        """Headers answering a preflight, or None when the origin is not allowed."""
        headers = self.response_headers(origin)
        if not headers:
            return None
        headers += [
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        ]
        if requested:
            headers.append((b"access-control-allow-headers", requested))
        return headers
