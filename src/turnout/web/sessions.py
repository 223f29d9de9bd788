"""Dashboard sessions and CSRF tokens, kept in memory.

Server-side sessions (a random id in the cookie, nothing else) mean nothing in the cookie can be
forged or replayed after sign-out, and a restart simply asks everyone to sign in again. Each
session carries its own CSRF token, which every form and htmx request must send back.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "turnout_session"
IDLE_SECONDS = 12 * 3600  # a session unused this long must sign in again
MAX_SESSIONS = 10_000  # bound memory: the oldest sessions are dropped first


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    signed_in: bool = False
    seen_at: float = field(default_factory=time.monotonic)
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) for the next page

    def say(self, kind: str, text: str) -> None:
        self.flash.append((kind, text))

    def take_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        return messages

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf.encode())


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def new(self) -> Session:
        self._expire()
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.seen_at > IDLE_SECONDS:
            self._by_id.pop(session_id, None)
            return None
        session.seen_at = now
        return session

    def sign_in(self, old: Session) -> Session:
        """A fresh id and token on sign-in, so an id planted before sign-in is worthless."""
        self._by_id.pop(old.id, None)
        session = self.new()
        session.signed_in = True
        return session

    def drop(self, session: Session) -> None:
        self._by_id.pop(session.id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self._by_id.items() if now - s.seen_at > IDLE_SECONDS]:
            del self._by_id[key]
        while len(self._by_id) >= MAX_SESSIONS:
            del self._by_id[next(iter(self._by_id))]
