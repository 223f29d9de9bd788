"""Which delivery process owns which partition of the NATS log: leases in a JetStream key-value
bucket.

Why leases and not a coordinator: JetStream already gives compare-and-set on a key (create only
if absent; update only at a known revision) and expiry (a bucket's max age). A partition is
owned by whoever holds its key in `<stream>-leases`; the owner renews it every `interval` by
updating at the revision it last wrote, so two processes can never both believe they renewed it.
A killed process stops renewing, its keys expire after `ttl`, and the others create them.

Membership works the same way (`<stream>-members`, one key per delivery process, expiring with
the process). Each process aims at its fair share, ceil(partitions / members): with fewer it
takes free partitions (preferring those that hash closest to it, so a rebalance moves few), and
with more it releases the extras, after stopping their lanes, so a joining process gets work.

Safety margin: a process that cannot renew for half the ttl gives its partitions up on its own,
before anyone else can take them, so two owners overlap only if a process stalls for longer
than the ttl between two checks (even then at-least-once holds; only order may briefly suffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable

from nats.js.errors import KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from turnout.tasks import cancel_until_done

logger = logging.getLogger("turnout.delivery.ownership")

Handler = Callable[[int], Awaitable[None]]


class Ownership:
    def __init__(
        self,
        members: KeyValue,
        leases: KeyValue,
        partitions: int,
        on_acquire: Handler,
        on_release: Handler,
        *,
        member_id: str | None = None,
        ttl: float = 6.0,
        interval: float = 1.0,
    ) -> None:
        self.member_id = member_id or uuid.uuid4().hex[:12]
        self._members = members
        self._leases = leases
        self.partitions = partitions
        self._on_acquire = on_acquire
        self._on_release = on_release
        self.ttl = ttl
        self.interval = interval
        self.owned: dict[int, int] = {}  # partition -> revision of our lease
        self.member_count = 1
        self._renewed_at = time.monotonic()
        self._busy: set[int] = set()  # partitions being started or stopped
        self._tasks: list[asyncio.Task[None]] = []
        self._changes: set[asyncio.Task[None]] = set()
        self.on_change: Callable[[], None] | None = None

    async def start(self) -> None:
        await self._members.put(self.member_id, b"")
        self._tasks = [
            asyncio.create_task(self._renew_forever(), name="ownership-renew"),
            asyncio.create_task(self._balance_forever(), name="ownership-balance"),
        ]

    async def stop(self) -> None:
        """Release every partition (lanes stop and commit first), then leave the group."""
        for task in self._tasks:
            await cancel_until_done(task)
        if self._changes:
            await asyncio.wait(self._changes)
        await asyncio.gather(*(self._release(p) for p in list(self.owned)))
        with contextlib.suppress(Exception):
            await self._members.delete(self.member_id)

    # -- renewing ----------------------------------------------------------------------------

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew()
            except Exception:
                logger.exception("ownership renewal failed")

    async def renew(self) -> None:
        ok = True
        try:
            await self._members.put(self.member_id, b"")
        except Exception as exc:
            ok = False
            logger.warning("cannot renew membership: %r", exc)
        for partition, revision in list(self.owned.items()):
            if partition not in self.owned:
                continue
            try:
                renewed = await self._leases.update(
                    _key(partition), self.member_id.encode(), last=revision
                )
                if partition in self.owned:  # not given up while the update was on its way
                    self.owned[partition] = renewed
            except KeyWrongLastSequenceError:
                if partition not in self.owned or partition in self._busy:
                    continue  # being given up: the lease is deleted on purpose
                logger.warning("lease on partition %d was lost; stopping its lanes", partition)
                self._spawn(self._lost(partition))
            except Exception as exc:
                ok = False
                logger.warning("cannot renew lease on partition %d: %r", partition, exc)
        if ok:
            self._renewed_at = time.monotonic()
        elif time.monotonic() - self._renewed_at > self.ttl / 2:
            logger.warning("no renewal for %.1fs: giving up every partition", self.ttl / 2)
            for partition in list(self.owned):
                self._spawn(self._lost(partition))

    async def _lost(self, partition: int) -> None:
        if self.owned.pop(partition, None) is None:
            return
        self._busy.add(partition)
        try:
            await self._on_release(partition)
        finally:
            self._busy.discard(partition)
            self._changed()

    # -- balancing ---------------------------------------------------------------------------

    async def _balance_forever(self) -> None:
        while True:
            try:
                await self.balance()
            except Exception:
                logger.exception("ownership balancing failed")
            await asyncio.sleep(self.interval)

    async def balance(self) -> None:
        members = await _keys(self._members)
        if self.member_id not in members:
            members.append(self.member_id)
        self.member_count = len(members)
        share = math.ceil(self.partitions / len(members))
        mine = sorted(self.owned, key=self._preference)
        if len(mine) > share:
            for partition in mine[share:]:
                self._spawn(self._give_up(partition))
            return
        if len(mine) == share:
            return
        taken = {int(k.split(".")[1]) for k in await _keys(self._leases)}
        free = [p for p in range(self.partitions) if p not in taken and p not in self._busy]
        for partition in sorted(free, key=self._preference)[: share - len(mine)]:
            try:
                revision = await self._leases.create(_key(partition), self.member_id.encode())
            except KeyWrongLastSequenceError:
                continue  # someone else was quicker
            self.owned[partition] = revision
            self._busy.add(partition)
            try:
                await self._on_acquire(partition)
            finally:
                self._busy.discard(partition)
            self._changed()

    async def _give_up(self, partition: int) -> None:
        """Stop the partition's lanes (they commit their positions) while still holding the
        lease, and only then delete it: the next owner starts from the committed position."""
        if partition in self._busy or partition not in self.owned:
            return
        self._busy.add(partition)
        try:
            await self._on_release(partition)
            revision = self.owned.pop(partition, None)
            if revision is not None:
                await self._delete_lease(partition, revision)
        finally:
            self._busy.discard(partition)
            self._changed()

    async def _delete_lease(self, partition: int, revision: int) -> None:
        """Delete our lease so the next owner need not wait for it to expire; if a renewal
        raced with us (the revision moved on), delete at the current one if it is still ours."""
        key = _key(partition)
        for _ in range(3):
            try:
                await self._leases.delete(key, last=revision)
                return
            except Exception:  # nats-py reports a wrong revision here as a plain API error
                try:
                    entry = await self._leases.get(key)
                except Exception:
                    return  # gone already
                if entry.value != self.member_id.encode() or entry.revision is None:
                    return
                revision = entry.revision

    async def _release(self, partition: int) -> None:
        await self._give_up(partition)

    def _preference(self, partition: int) -> int:
        """Rendezvous hashing: each member prefers a different, stable set of partitions."""
        digest = hashlib.blake2b(f"{self.member_id}:{partition}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big")

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _key(partition: int) -> str:
    return f"p.{partition}"


async def _keys(bucket: KeyValue) -> list[str]:
    try:
        return list(await bucket.keys())
    except NoKeysError:
        return []
