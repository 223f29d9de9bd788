"""Dashboard sessions and their CSRF tokens, kept in memory: signed-in sessions only.

Server-side sessions (a random id in the cookie, nothing else) mean nothing in the cookie can be
forged or replayed after sign-out, and a restart simply asks everyone to sign in again. Each
session carries its own CSRF token, which every form and htmx request must send back.

Only a sign-in with the admin token creates a session: the sign-in form itself is protected
without server state (`sign_in_form.py`), so anonymous visitors cannot fill this table and push
signed-in admins out of it.
"""

from __future__ import annotations

import asyncio
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
    seen_at: float = field(default_factory=time.monotonic)
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) for the next page
    # Set when the session ends (sign-out, idle expiry, eviction): long-lived responses opened
    # with it (the debugger's stream) end with it.
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def say(self, kind: str, text: str) -> None:
        self.flash.append((kind, text))

    def take_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        return messages

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf.encode())


class Sessions:
    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._by_id: dict[str, Session] = {}
        self._max = max_sessions

    def __len__(self) -> int:
        return len(self._by_id)

    def sign_in(self) -> Session:
        """A new signed-in session: a fresh id and CSRF token every time."""
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
            self.drop(session)
            return None
        session.seen_at = now
        return session

    def drop(self, session: Session) -> None:
        self._by_id.pop(session.id, None)
        session.ended.set()

    def _expire(self) -> None:
        now = time.monotonic()
        for stale in [s for s in self._by_id.values() if now - s.seen_at > IDLE_SECONDS]:
            self.drop(stale)
        while len(self._by_id) >= self._max:
            self.drop(next(iter(self._by_id.values())))
