"""Who Turnout must not take in or deliver: the suppression list and the deletion markers.

Both live in memory, as plain sets and a dict, because ingest checks every call against them on
its hot path: a set lookup costs the same for ten ids or a hundred thousand. The store keeps the
durable copy (privacy/records.py) and `PrivacyService` loads it at start and reloads it when
another process changed it.

Deletion markers are held by a keyed hash of the person key, never the id itself: a marker must
outlive the request (a lane may hold the person's calls in memory, or retry them, after the log
lost them), but no file may hold the id once the request is done.
"""

from __future__ import annotations

import hashlib

from turnout.spec.message import Message

SUPPRESSED = "suppressed"
DELETED = "deleted"


class Hasher:
    """A keyed hash of ids, salted with the server's secret key: the same id always gives the
    same value in every process sharing the key, and nobody without the key can test a guess."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = hashlib.sha256(b"turnout privacy ids\x00" + secret_key).digest()

    def __call__(self, kind: str, value: str) -> str:
        digest = hashlib.blake2b(f"{kind}\x00{value}".encode(), key=self._key, digest_size=20)
        return digest.hexdigest()


class PrivacyList:
    """The suppressed userIds and anonymousIds, and the people deleted up to a log offset."""

    def __init__(self, hasher: Hasher) -> None:
        self.hasher = hasher
        self.users: set[str] = set()
        self.anonymous: set[str] = set()
        self.deleted: dict[str, int] = {}  # hashed person key -> newest offset to drop

    @property
    def active(self) -> bool:
        return bool(self.users or self.anonymous or self.deleted)

    def suppressed(self, user_id: str | None, anonymous_id: str | None) -> bool:
        """Whether ingest must drop a call of this person (two set lookups)."""
        return user_id in self.users or anonymous_id in self.anonymous

    def verdict(self, message: Message, person: str, offset: int) -> str | None:
        """Why a lane must not deliver this stored call, or None when it may."""
        if message.user_id in self.users or message.anonymous_id in self.anonymous:
            return SUPPRESSED
        if self.erased(person, offset):
            return DELETED
        return None

    def erased(self, person: str, offset: int) -> bool:
        """Whether the call at `offset` is one of a deleted person's: nothing may record it."""
        if not self.deleted:
            return False
        upto = self.deleted.get(self.hasher("person", person))
        return upto is not None and offset <= upto
