"""Erasing people's calls from the JetStream log: found by their subject, erased by sequence.

Finding them: each call is published on `<stream>.<partition>.<person token>`, and JetStream
indexes its messages by subject (per message block), so asking for "the next message on this
subject from sequence N" (`STREAM.MSG.GET` with `next_by_subj`) is answered from that index,
skipping the blocks that hold none of the person's calls: the subject is the index, and nothing
else has to be kept in step with the stream. It costs one request per call found (1.8 to 2.5 ms
each on a stream of 1,000,000 calls, `bench/privacy.py`), so it suits the usual request, a few
people: their calls are found without reading anyone else's. Reading the whole partition costs
the same whoever is asked for (6 to 10 s for a partition of 62,500 calls, about 0.15 ms a call),
so past some 5,000 calls to find in one partition it is cheaper: from `SCAN_FROM` people in a
partition, a large request reads the partition once instead.
(A consumer filtered on one person's subject was tried too: creating one is slow when the server
has not read the stream lately, 1.5 to 4.6 s, and a few created at once ran past the API's
timeout.) The token is a hash, so two people may share a subject: each call's person is checked
once decoded, and only theirs are erased.

Erasing them: one `$JS.API.STREAM.MSG.DELETE` per call. nats-py's `delete_msg` sends only the
sequence, without `no_erase`, and then the server *erases* the message rather than just
removing it: its record in the block file (subject, headers, body) is overwritten with random
bytes and the file synced. So the call's bytes leave the disk at once, not at the next
compaction. On a replicated stream (`replicas` > 1) every replica erases its own copy; the
replication log of the stream may still hold the original append until JetStream compacts it.

No key-value bucket of the log holds a person's data (positions and leases hold numbers and
process ids; replay requests hold dead-letter numbers), so there is nothing to purge there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec
from nats.js.errors import APIError, NotFoundError

from turnout.log.nats_reader import PullReader

if TYPE_CHECKING:
    from turnout.log.nats import NATSLog

PEOPLE_AT_ONCE = 8  # people looked for at once, by subject
# People of one partition from whom on the partition is read whole: 64 people of 100 calls cost
# 12 to 16 s by subject, more than reading a partition of 62,500 calls (6 to 10 s).
SCAN_FROM = 64
READ_BATCH = 1000  # calls per pull while reading a partition
DELETES_AT_ONCE = 64  # erase requests in flight at once
DELETE_FAILED = 10057  # JetStream's error code for a message delete that did not happen


async def erase_persons(log: NATSLog, persons: Iterable[str], upto: int) -> int:
    """Erase every call of these person keys at sequences <= `upto`; the count erased."""
    by_partition: dict[int, set[str]] = {}
    for person in set(persons):
        by_partition.setdefault(log.partition_of(person), set()).add(person)
    finding = asyncio.Semaphore(PEOPLE_AT_ONCE)

    async def find(person: str) -> list[int]:
        async with finding:
            return await sequences_of(log, person, upto)

    sequences: list[int] = []
    for partition, people in sorted(by_partition.items()):
        if len(people) >= SCAN_FROM:
            sequences += await sequences_in(log, partition, people, upto)
        else:
            for found in await asyncio.gather(*(find(p) for p in sorted(people))):
                sequences += found
    deleting = asyncio.Semaphore(DELETES_AT_ONCE)

    async def erase(seq: int) -> bool:
        async with deleting:
            return await erase_one(log, seq)

    return sum(await asyncio.gather(*(erase(seq) for seq in sorted(sequences))))


async def sequences_in(log: NATSLog, partition: int, people: set[str], upto: int) -> list[int]:
    """The sequences of these people's calls up to `upto`, reading the whole partition."""
    reader = PullReader(log.nc, log.js, log.stream, f"{log.stream}.{partition}.>")
    found: list[int] = []
    after = 0
    try:
        while True:
            batch = await reader.read(after, READ_BATCH)
            found += [e.offset for e in batch if e.offset <= upto and e.person in people]
            if not batch or not reader.more or batch[-1].offset >= upto:
                return found
            after = batch[-1].offset
    finally:
        await reader.close()


async def sequences_of(log: NATSLog, person: str, upto: int) -> list[int]:
    """The sequences of the person's calls up to `upto`, read from their subject alone."""
    subject = log.subject(person)
    found: list[int] = []
    seq = 1
    while seq <= upto:
        try:
            raw = await log.js.get_msg(log.stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        if raw.seq is None or raw.seq > upto:
            break
        _, owner, _ = msgspec.msgpack.decode(raw.data or b"", type=tuple[str, str, bytes])
        if owner == person:
            found.append(raw.seq)
        seq = raw.seq + 1
    return found


async def erase_one(log: NATSLog, seq: int) -> bool:
    """Erase one message; False when it was gone already (trimmed, or erased by an earlier run
    of the same request)."""
    try:
        return bool(await log.js.delete_msg(log.stream, seq))
    except APIError as exc:
        if exc.err_code != DELETE_FAILED:
            raise
        try:  # "delete failed" also covers a message that is not there: make sure
            await log.js.get_msg(log.stream, seq)
        except NotFoundError:
            return False
        raise
