"""The event log on NATS JetStream, for several Turnout processes on several machines.

Layout: one stream (`[log] stream`, default `turnout`) with subjects
`<stream>.<partition>.<person token>`; the partition is a stable hash of the person key, so one
person's messages stay in one partition, in order. Offsets are stream sequence numbers: they grow
with every append across all partitions, so within a partition they grow too, which is all a
lane's watermark needs.

- append: every entry of a request is published at once, each with a `Nats-Msg-Id` (JetStream
  drops a re-sent duplicate, so retrying a publish whose acknowledgement was lost is safe), and
  the call returns only when every PubAck is in: that is the commit. Concurrent requests share the
  connection's pipeline, so they share the round trips (the group commit of the SQLite log).
- read: `NATSPartition` is the `EventLog` read side of one partition, for the lane that owns it.
- positions: a key-value bucket `<stream>-positions`, one key per lane id and partition.
- new entries: the stream republishes headers only (`Nats-Sequence`) to `_turnout_new.<stream>.>`
  so an idle lane wakes on an append anywhere in the cluster without polling the stream.
- retention: `trim` purges each partition below every connection's position and past retention;
  the stream has no age limit of its own, since that would drop messages not yet delivered.
- privacy: `erase_persons` erases one person's calls by sequence, found by their subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from turnout.config import LogConfig
from turnout.log.base import Entry, LogFull, LogStats, NewEntry
from turnout.log.nats_erase import erase_persons
from turnout.log.nats_reader import PullReader, decode_entry, encode_envelope
from turnout.log.partitions import kv_key, lane_in_partition, partition_of, person_token

logger = logging.getLogger("turnout.log.nats")

PUBLISH_ATTEMPTS = 3
PUBLISH_TIMEOUT = 5.0
DUPLICATE_WINDOW = 120.0  # seconds JetStream remembers message ids (covers publish retries)

ControlHandler = Callable[[dict[str, Any]], Awaitable[None]]


class NATSLog:
    """`EventLog` on JetStream. As an `EventLog` it reads every partition; `partition(p)` gives
    the view a delivery lane uses."""

    def __init__(self, settings: LogConfig) -> None:
        self.settings = settings
        self.stream = settings.stream
        self.partitions = settings.partitions
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._positions: KeyValue | None = None
        self._heads: dict[int, int] = {}
        self._appended: dict[int, asyncio.Event] = {}
        self._all: PullReader | None = None
        self._all_lock = asyncio.Lock()  # one read at a time: they share one consumer
        self._control_handlers: list[ControlHandler] = []

    # -- connection --------------------------------------------------------------------------

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "NATSLog.start() was not called"
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "NATSLog.start() was not called"
        return self._js

    async def start(self) -> None:
        self._nc = await nats.connect(
            self.settings.url,
            name="turnout",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
        await self._ensure_stream()
        self._positions = await self._bucket(f"{self.stream}-positions")
        await self._check_partitions()
        await self._nc.subscribe(f"_turnout_new.{self.stream}.>", cb=self._on_new)
        await self._nc.subscribe(f"_turnout_ctl.{self.stream}", cb=self._on_control)

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.stream}.>"],
            storage=api.StorageType.FILE,
            num_replicas=self.settings.replicas,
            duplicate_window=DUPLICATE_WINDOW,
            retention=api.RetentionPolicy.LIMITS,
            republish=api.RePublish(
                src=f"{self.stream}.>", dest=f"_turnout_new.{self.stream}.>", headers_only=True
            ),
        )
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(config)
            return
        await self.js.update_stream(config)

    async def _bucket(self, name: str, ttl: float | None = None) -> KeyValue:
        """A key-value bucket, created on first use by whichever process starts first."""
        try:
            return await self.js.key_value(name)
        except (NotFoundError, nats.js.errors.BucketNotFoundError):
            return await self.js.create_key_value(
                bucket=name, history=1, ttl=ttl, replicas=self.settings.replicas
            )

    async def bucket(self, name: str, ttl: float | None = None) -> KeyValue:
        return await self._bucket(f"{self.stream}-{name}", ttl)

    async def _check_partitions(self) -> None:
        """Partitions are fixed for a stream's life: every process must agree on the count, or
        one person's messages would be split between partitions and lose their order."""
        assert self._positions is not None
        key = "partitions"
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self._positions.create(key, str(self.partitions).encode())
        entry = await self._positions.get(key)
        agreed = int((entry.value or b"0").decode())
        if agreed != self.partitions:
            raise RuntimeError(
                f"log.partitions is {self.partitions} here but stream {self.stream!r} was created"
                f" with {agreed}; every process must use {agreed}"
            )

    async def close(self) -> None:
        if self._all is not None:
            await self._all.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    # -- appending ---------------------------------------------------------------------------

    def subject(self, person: str) -> str:
        return f"{self.stream}.{partition_of(person, self.partitions)}.{person_token(person)}"

    async def append(self, entries: list[NewEntry]) -> None:
        if not entries:
            return
        outgoing = [
            (
                self.subject(e.person),
                encode_envelope(e.source, e.person, e.payload),
                {"Nats-Msg-Id": uuid.uuid4().hex},
            )
            for e in entries
        ]
        last_error: Exception | None = None
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                futures = [
                    await self.js.publish_async(subject, body, headers=headers, stream=self.stream)
                    for subject, body, headers in outgoing
                ]
                acks = await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT)
                for (subject, _, _), ack in zip(outgoing, acks, strict=True):
                    partition = int(subject.split(".")[-2])
                    self._heads[partition] = max(self._heads.get(partition, 0), ack.seq)
                return
            except Exception as exc:  # timeouts, reconnects, storage full: retry, then shed
                last_error = exc
                logger.warning("append attempt %d failed: %r", attempt + 1, exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        raise LogFull(f"the event log (NATS) did not confirm the append: {last_error!r}")

    async def _on_new(self, msg: Msg) -> None:
        headers = msg.headers or {}
        try:
            partition = int(msg.subject.split(".")[-2])
            seq = int(headers.get("Nats-Sequence", "0"))
        except (ValueError, IndexError):
            return
        if seq > self._heads.get(partition, 0):
            self._heads[partition] = seq
        event = self._appended.pop(partition, None)
        if event is not None:
            event.set()

    async def wait_in(self, partition: int, after: int, timeout: float) -> None:
        if self._heads.get(partition, 0) > after:
            return
        event = self._appended.setdefault(partition, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    # -- reading (every partition) -------------------------------------------------------------

    async def read(self, after: int, limit: int) -> list[Entry]:
        async with self._all_lock:
            if self._all is None:
                self._all = PullReader(self.nc, self.js, self.stream, f"{self.stream}.>")
            return await self._all.read(after, limit)

    async def read_subject(self, subject: str, person: str, after: int, limit: int) -> list[Entry]:
        """One person's entries: a short-lived consumer filtered on the person's subject."""
        reader = PullReader(self.nc, self.js, self.stream, subject)
        try:
            found: list[Entry] = []
            while len(found) < limit:
                batch = await reader.read(after, limit)
                found.extend(e for e in batch if e.person == person)
                if not batch or not reader.more:
                    break
                after = batch[-1].offset
            return found[:limit]
        finally:
            await reader.close()

    async def read_person(self, person: str, after: int, limit: int) -> list[Entry]:
        return await self.read_subject(self.subject(person), person, after, limit)

    async def wait_for_new(self, after: int, timeout: float) -> None:
        if max(self._heads.values(), default=0) > after:
            return
        waits = [
            asyncio.ensure_future(self.wait_in(p, after, timeout)) for p in range(self.partitions)
        ]
        _, rest = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in rest:
            waiter.cancel()

    async def head(self) -> int:
        info = await self.js.stream_info(self.stream)
        return int(info.state.last_seq)

    async def erase_persons(self, persons: set[str], upto: int) -> int:
        """Erase these people's calls at sequences <= `upto` (a privacy deletion); the count.
        How they are found and why the bytes leave the disk: `nats_erase.py`."""
        return await erase_persons(self, persons, upto)

    # -- positions ---------------------------------------------------------------------------

    @property
    def positions(self) -> KeyValue:
        assert self._positions is not None
        return self._positions

    async def position(self, lane: str) -> int:
        try:
            entry = await self.positions.get("lane." + kv_key(lane))
        except KeyNotFoundError:
            return 0
        return int((entry.value or b"0").decode())

    async def commit_position(self, lane: str, offset: int) -> None:
        """Only ever forward (as the SQLite log's MAX): a slow former owner finishing its last
        flush cannot move a position back over what the new owner has resolved."""
        key = "lane." + kv_key(lane)
        for _ in range(5):
            try:
                entry = await self.positions.get(key)
            except KeyNotFoundError:
                try:
                    await self.positions.create(key, str(offset).encode())
                    return
                except KeyWrongLastSequenceError:
                    continue
            if int((entry.value or b"0").decode()) >= offset:
                return
            try:
                await self.positions.update(key, str(offset).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue
        raise RuntimeError(f"position of {lane} is contended; not committed")

    async def reset_position(self, lane: str, offset: int) -> None:
        await self.positions.put("lane." + kv_key(lane), str(offset).encode())

    # -- time, stats, retention --------------------------------------------------------------

    async def offset_in(self, subject: str, unix_time: float) -> int:
        """The sequence just before the first entry of `subject` appended at or after the time."""
        info = await self.js.add_consumer(
            self.stream,
            api.ConsumerConfig(
                filter_subject=subject,
                deliver_policy=api.DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.datetime.fromtimestamp(unix_time, datetime.UTC),
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        try:
            inbox = self.nc.new_inbox()
            sub = await self.nc.subscribe(inbox)
            await self.nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{info.name}",
                msgspec.json.encode({"batch": 1, "no_wait": True}),
                reply=inbox,
            )
            msg = await sub.next_msg(timeout=PUBLISH_TIMEOUT)
            await sub.unsubscribe()
            if not (msg.headers and msg.headers.get("Status")):
                return max(decode_entry(msg).offset - 1, 0)
            return await self.head()
        finally:
            with contextlib.suppress(Exception):
                await self.js.delete_consumer(self.stream, info.name)

    async def offset_at(self, unix_time: float) -> int:
        return await self.offset_in(f"{self.stream}.>", unix_time)

    async def stats(self) -> LogStats:
        info = await self.js.stream_info(self.stream)
        state = info.state
        oldest_at: float | None = None
        if state.messages:
            with contextlib.suppress(Exception):
                raw = await self.js.get_msg(self.stream, seq=state.first_seq)
                if raw.headers is not None or raw.data is not None:
                    oldest_at = _raw_time(raw)
        return LogStats(
            entries=state.messages,
            head=state.last_seq,
            oldest_offset=state.first_seq,
            oldest_appended_at=oldest_at,
            size_bytes=state.bytes,
        )

    async def trim(self, before_offset: int, older_than: float) -> int:
        removed = 0
        for p in range(self.partitions):
            removed += await self.trim_partition(p, before_offset, older_than)
        return removed

    async def trim_partition(self, partition: int, before_offset: int, older_than: float) -> int:
        subject = f"{self.stream}.{partition}.>"
        aged = await self.offset_in(subject, older_than) + 1
        keep_from = min(before_offset, aged)
        if keep_from <= 1:
            return 0
        before = (await self.js.stream_info(self.stream)).state.messages
        await self.js.purge_stream(self.stream, subject=subject, seq=keep_from)
        after = (await self.js.stream_info(self.stream)).state.messages
        return max(before - after, 0)

    # -- partitions and control --------------------------------------------------------------

    def partition_of(self, person: str) -> int:
        return partition_of(person, self.partitions)

    def partition(self, partition: int) -> NATSPartition:
        return NATSPartition(self, partition)

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Tell every running process something (a redelivery, a replay); not durable."""
        await self.nc.publish(f"_turnout_ctl.{self.stream}", msgspec.json.encode(message))
        await self.nc.flush()

    def on_control(self, handler: ControlHandler) -> None:
        self._control_handlers.append(handler)

    async def _on_control(self, msg: Msg) -> None:
        try:
            message = msgspec.json.decode(msg.data)
        except msgspec.DecodeError:
            return
        for handler in self._control_handlers:
            try:
                await handler(message)
            except Exception:
                logger.exception("control message %r failed", message)


def _raw_time(raw: Any) -> float | None:
    stamp = getattr(raw, "time", None)
    if isinstance(stamp, datetime.datetime):
        return stamp.timestamp()
    return None


class NATSPartition:
    """The `EventLog` a lane sees for one partition of the NATS log.

    The lane keeps its own lane id (`connection:<name>`); this view stores its position under
    `connection:<name>:p<n>`, so each (connection, partition) pair has its own watermark and a
    partition can move to another process without touching any other partition's position.
    """

    def __init__(self, log_: NATSLog, partition: int) -> None:
        self.base = log_
        self.partition = partition
        self.subject = f"{log_.stream}.{partition}.>"
        self._reader = PullReader(log_.nc, log_.js, log_.stream, self.subject)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._reader.close()

    async def append(self, entries: list[NewEntry]) -> None:
        await self.base.append(entries)

    async def read(self, after: int, limit: int) -> list[Entry]:
        entries = await self._reader.read(after, limit)
        if self._reader.more and entries:
            self.base._heads[self.partition] = max(
                self.base._heads.get(self.partition, 0), entries[-1].offset + 1
            )
        return entries

    async def read_person(self, person: str, after: int, limit: int) -> list[Entry]:
        return await self.base.read_person(person, after, limit)

    async def wait_for_new(self, after: int, timeout: float) -> None:
        await self.base.wait_in(self.partition, after, timeout)

    async def position(self, lane: str) -> int:
        return await self.base.position(lane_in_partition(lane, self.partition))

    async def commit_position(self, lane: str, offset: int) -> None:
        await self.base.commit_position(lane_in_partition(lane, self.partition), offset)

    async def reset_position(self, lane: str, offset: int) -> None:
        await self.base.reset_position(lane_in_partition(lane, self.partition), offset)

    async def offset_at(self, unix_time: float) -> int:
        return await self.base.offset_in(self.subject, unix_time)

    async def head(self) -> int:
        return await self.base.head()

    async def stats(self) -> LogStats:
        return await self.base.stats()

    async def trim(self, before_offset: int, older_than: float) -> int:
        return await self.base.trim_partition(self.partition, before_offset, older_than)
