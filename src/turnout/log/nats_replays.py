"""Replay requests that outlive the moment they are made, on the NATS log shared by several
processes.

A replay asked of any process (even one that only ingests) must reach the lane of every
partition concerned, including a partition moving between processes at that instant or owned by
no process yet. So a request is not a message to whoever listens: it is written to a JetStream
key-value bucket, one key per connection and partition holding the dead-letter ids to replay.
The process owning the partition takes the key (reads it, hands the letters to its lane, and
deletes it only if nobody added to it meanwhile), when told of a new request and at every sweep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

_absent = (KeyNotFoundError, KeyDeletedError)


class ReplayRequests:
    def __init__(self, bucket: Any) -> None:
        self._bucket = bucket

    @staticmethod
    def _key(connection: str, partition: int) -> str:
        return f"{connection}.{partition}"

    async def add(self, connection: str, partition: int, ids: list[int]) -> None:
        """Add ids to the partition's pending request (compare-and-set: concurrent adds merge)."""
        key = self._key(connection, partition)
        while True:
            try:
                entry = await self._bucket.get(key)
            except _absent:
                try:
                    await self._bucket.create(key, msgspec.json.encode(sorted(set(ids))))
                    return
                except KeyWrongLastSequenceError:
                    continue  # another process created it first: merge into theirs
            pending = set(msgspec.json.decode(entry.value or b"[]", type=list[int]))
            try:
                await self._bucket.update(
                    key, msgspec.json.encode(sorted(pending | set(ids))), last=entry.revision
                )
                return
            except KeyWrongLastSequenceError:
                continue

    async def take(
        self,
        connection: str,
        partition: int,
        replay: Callable[[set[int]], Awaitable[bool]],
    ) -> int:
        """Hand the pending ids to `replay`; clear the request once every id was handed over.

        `replay` answers False when it cannot take them (the partition's lane just left this
        process): the request then stays for the next owner. Returns how many ids were handed.
        """
        key = self._key(connection, partition)
        handed: set[int] = set()
        while True:
            try:
                entry = await self._bucket.get(key)
            except _absent:
                return len(handed)
            ids = set(msgspec.json.decode(entry.value or b"[]", type=list[int])) - handed
            if ids:
                if not await replay(ids):
                    return len(handed)
                handed |= ids
            try:
                await self._bucket.delete(key, last=entry.revision)
                return len(handed)
            except KeyWrongLastSequenceError:
                continue  # more ids arrived while these were handed over: take those too
