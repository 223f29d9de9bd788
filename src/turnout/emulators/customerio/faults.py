"""Failures injected on purpose, to test how a client copes with an unreliable Customer.io.

A fault rule says what goes wrong (an HTTP status such as 503 or 429 with Retry-After, a request
that hangs, a connection dropped without an answer) and for which requests (the next N, a random
fraction, everything for T seconds, optionally only paths under a prefix). Rules are checked in
the order added; the first that matches decides. With no rules the check is one truthiness test,
so an idle fault controller costs nothing per request.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec

FaultKind = Literal["status", "hang", "drop"]


class Fault(msgspec.Struct, kw_only=True):
    """One fault rule. With neither `count`, `fraction` nor `seconds` it applies until cleared."""

    kind: FaultKind = "status"
    status: int = 503
    retry_after: float | None = None  # seconds, sent as a Retry-After header
    count: int | None = None  # apply to the next `count` matching requests
    fraction: float | None = None  # apply to each matching request with this probability
    seconds: float | None = None  # apply for this long after being added
    hang_seconds: float | None = None  # for "hang": how long to hold (default: config.hang_seconds)
    path_prefix: str | None = None  # only requests whose raw path starts with this
    body: str | None = None  # response body for "status" (default: a Customer.io-style error)
    expires_at: float | None = None  # monotonic; set when added from `seconds`
    hits: int = 0

    def describe(self) -> str:
        return self.kind if self.kind != "status" else f"status {self.status}"


class FaultControls:
    """Run-time control of faults and credentials, from Python or ``POST /_emulator/faults``."""

    def __init__(self, set_credentials: Callable[[str | None, str | None], None],
                 rate_limit: Callable[[int | None, float | None], None],
                 seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._random = random.Random(seed)
        self._set_credentials = set_credentials
        self._rate_limit = rate_limit

    # ---- adding faults ---------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        if fault.seconds is not None:
            fault.expires_at = time.monotonic() + fault.seconds
        with self._lock:
            self._rules.append(fault)
        return fault

    def fail_next(self, count: int = 1, status: int = 503, retry_after: float | None = None,
                  path_prefix: str | None = None) -> Fault:
        """The next `count` requests answer `status` (e.g. 500, 503, 429)."""
        return self.add(Fault(status=status, count=count, retry_after=retry_after,
                              path_prefix=path_prefix))

    def fail_fraction(self, fraction: float, status: int = 503, seconds: float | None = None,
                      retry_after: float | None = None, path_prefix: str | None = None) -> Fault:
        """Each request answers `status` with probability `fraction` (for `seconds`, or until
        cleared)."""
        return self.add(Fault(status=status, fraction=fraction, seconds=seconds,
                              retry_after=retry_after, path_prefix=path_prefix))

    def fail_for(self, seconds: float, status: int = 503, retry_after: float | None = None,
                 path_prefix: str | None = None) -> Fault:
        """Every request answers `status` for the next `seconds` (an outage)."""
        return self.add(Fault(status=status, seconds=seconds, retry_after=retry_after,
                              path_prefix=path_prefix))

    def throttle_next(self, count: int = 1, retry_after: float = 1.0) -> Fault:
        """The next `count` requests answer 429 with ``Retry-After``."""
        return self.fail_next(count, status=429, retry_after=retry_after)

    def hang_next(self, count: int = 1, seconds: float | None = None) -> Fault:
        """The next `count` requests get no answer for `seconds` (the client should time out)."""
        return self.add(Fault(kind="hang", count=count, hang_seconds=seconds))

    def drop_next(self, count: int = 1) -> Fault:
        """The next `count` requests have their connection closed without any answer."""
        return self.add(Fault(kind="drop", count=count))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    # ---- credentials and rate limiting -----------------------------------------------------

    def set_credentials(self, site_id: str | None = None, api_key: str | None = None) -> None:
        """Accept other credentials from now on (the old ones then get 401)."""
        self._set_credentials(site_id, api_key)

    def revoke_key(self) -> None:
        """Simulate a revoked Track API key: the configured key stops working."""
        self._set_credentials(None, "revoked-" + secrets.token_hex(8))

    def rate_limit(self, requests: int | None = 3000, period: float | None = 3.0) -> None:
        """Turn the token-bucket rate limit on (`requests` per `period` s) or off (None)."""
        self._rate_limit(requests, period)

    # ---- matching --------------------------------------------------------------------------

    def take(self, path: str) -> Fault | None:
        """The fault for a request to `path`, if any, consuming one use of a counted rule."""
        if not self._rules:
            return None
        now = time.monotonic()
        with self._lock:
            for rule in list(self._rules):
                if rule.expires_at is not None and now >= rule.expires_at:
                    self._rules.remove(rule)
                    continue
                if rule.path_prefix is not None and not path.startswith(rule.path_prefix):
                    continue
                if rule.fraction is not None and self._random.random() >= rule.fraction:
                    continue
                rule.hits += 1
                if rule.count is not None and rule.hits >= rule.count:
                    self._rules.remove(rule)
                return rule
        return None

    def configure(self, command: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON command from ``POST /_emulator/faults``.

        ``{"clear": true}``; ``{"credentials": {"site_id": .., "api_key": ..}}``;
        ``{"revoke_key": true}``; ``{"rate_limit": {"requests": 100, "period": 1}}`` or
        ``{"rate_limit": null}``; otherwise the body is a :class:`Fault` (kind, status, count, ...).
        Several keys may be combined; a fault is added when ``kind`` or ``status`` is present.
        """
        if command.get("clear"):
            self.clear()
        if "credentials" in command:
            creds = command["credentials"] or {}
            self.set_credentials(creds.get("site_id"), creds.get("api_key"))
        if command.get("revoke_key"):
            self.revoke_key()
        if "rate_limit" in command:
            limit = command["rate_limit"]
            if limit is None:
                self.rate_limit(None, None)
            else:
                self.rate_limit(int(limit.get("requests", 3000)), float(limit.get("period", 3.0)))
        if "kind" in command or "status" in command:
            fields = {k: v for k, v in command.items() if k in Fault.__struct_fields__}
            self.add(msgspec.convert(fields, Fault))
        return {"faults": msgspec.to_builtins(self.active)}
