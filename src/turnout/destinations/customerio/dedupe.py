"""Deterministic event dedupe ids: a ULID derived from the message, so a re-send is a duplicate.

Customer.io ignores a second event with the same `id`, and requires that id to be a ULID (ref §8).
Turnout delivers at least once, so every re-send of a message must carry the same id. The ULID is:

* 48 bits of time: the time the device stamped on the call (`originalTimestamp`, which
  ingest fills from a client's `timestamp` too) in milliseconds since the epoch, clamped to
  ULID's range, so ids sort roughly by event time like ordinary ULIDs; zero when the client sent
  no time at all;
* 80 bits of "randomness": the first 10 bytes of SHA-256 over the `messageId`,

encoded as 26 characters of Crockford base32. Only what the client sent decides the id: an SDK
that resends a request resends the same `messageId` and `originalTimestamp`, while the corrected
`timestamp` moves with each attempt's network delay, and for a call sent without any time it is
the moment each attempt was received. So Turnout's re-sends and an SDK's resends map to one id.
Two different messageIds collide with probability 2**-80 even within the same millisecond.
Customer.io does not read the time part (only the ULID format), so a zero time is as good as any.
"""

from __future__ import annotations

import hashlib

from turnout.spec import timestamps

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MAX_TIME = (1 << 48) - 1


def ulid_for(message_id: str, timestamp: str | None) -> str:
    """The dedupe ULID for a message; `timestamp` is the client's own ISO-8601 time, if any
    (absent or unreadable counts as 0)."""
    millis = _millis(timestamp) if timestamp else 0
    random = int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:10], "big")
    return encode_ulid((millis << 80) | random)


def encode_ulid(value: int) -> str:
    """Crockford base32 of a 128-bit integer, 26 characters, most significant first."""
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def _millis(timestamp: str) -> int:
    parsed = timestamps.read(timestamp)
    if parsed is None:
        return 0
    millis = int(parsed.timestamp() * 1000)
    return min(max(millis, 0), _MAX_TIME)
