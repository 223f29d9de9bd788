"""Checking a presented admin token, with failed attempts throttled per client address.

The admin token opens the dashboard, the management API and (when protected) `/metrics`, so
every door compares it here, and they share one count of failures: a client that guessed wrong
`limit` times within `window_s` seconds is answered 429 (with `Retry-After`) at every door until
its oldest failure leaves the window. The count is per client address (as uvicorn reports it:
the peer, or `X-Forwarded-For` from a trusted proxy), so one address's guesses never lock out an
admin signing in from another. Each failure is logged at WARNING with the address, never with
the guessed token.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from turnout.manage.errors import ManagementError

logger = logging.getLogger("turnout.web")


def client_address(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"


class TokenCheck:
    def __init__(self, expected: Callable[[], str], limit: int, window_s: float) -> None:
        self._expected = expected  # read at each check: the token is settled at start
        self._failures = RateLimitItemPerSecond(limit, max(1, math.ceil(window_s)))
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, request: HTTPConnection) -> int:
        """Seconds this client must wait before trying a token again; 0 = it may try now."""
        client = client_address(request)
        if self._limiter.test(self._failures, client):
            return 0
        reset_at, _ = self._limiter.get_window_stats(self._failures, client)
        return max(1, math.ceil(reset_at - time.time()))

    def matches(self, request: HTTPConnection, presented: str, door: str) -> bool:
        """Whether `presented` is the admin token; a wrong one counts against its client."""
        expected = self._expected()
        if expected and presented and hmac.compare_digest(presented.encode(), expected.encode()):
            return True
        client = client_address(request)
        self._limiter.hit(self._failures, client)
        logger.warning("%s: wrong admin token from %s", door, client)
        return False

    def bearer(self, request: HTTPConnection, door: str) -> ManagementError | None:
        """What to refuse a request that must carry `Authorization: Bearer <admin token>`
        with, or None when it carries the right one."""
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return unauthorized()
        wait = self.retry_after(request)
        if wait:
            return ManagementError(
                429,
                "too_many_attempts",
                f"too many wrong admin tokens from this address; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        if not self.matches(request, presented, door):
            return unauthorized()
        return None


def unauthorized() -> ManagementError:
    return ManagementError(
        401,
        "unauthorized",
        "a valid admin bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )
