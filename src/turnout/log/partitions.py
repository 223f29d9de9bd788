"""Partitioning by person: which partition and which subject token a person's messages go to.

Why a hash of the person key (and not of the raw userId): the key already combines the source and
the identity (`Message.person_key`), and the hash must be stable across processes, machines and
Python versions (so `hash()` is out: it is salted per process). blake2b is in the stdlib and fast.
The subject token is a hash too, because NATS subjects cannot carry arbitrary user ids (dots,
spaces, wildcards); two people sharing a token is harmless, readers filter on the person itself.
"""

from __future__ import annotations

import base64
import hashlib

TOKEN_BYTES = 8


def person_digest(person: str) -> bytes:
    return hashlib.blake2b(person.encode(), digest_size=TOKEN_BYTES).digest()


def partition_of(person: str, partitions: int) -> int:
    """Stable partition of a person in [0, partitions)."""
    return int.from_bytes(person_digest(person), "big") % partitions


def person_token(person: str) -> str:
    """A subject-safe token standing for a person (16 hex characters)."""
    return person_digest(person).hex()


def kv_key(name: str) -> str:
    """A NATS key-value key for any string (lane ids hold connection names of any shape)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def lane_in_partition(lane: str, partition: int) -> str:
    """A lane id per partition: `connection:<name>` on partition 3 is `connection:<name>:p3`."""
    return f"{lane}:p{partition}"
