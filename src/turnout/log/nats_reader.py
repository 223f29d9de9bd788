"""Reading one filtered slice of the JetStream log in order, from any sequence, in batches.

Why our own pull loop rather than nats-py's `fetch`: a lane asks "entries after N, at most L" and
must get an answer at once, empty or not (it waits for new entries separately, and may be
cancelled while waiting). `fetch` falls back to a lingering pull that outlives a cancelled
caller and can swallow the next message. Here each read is one `no_wait` pull on its own inbox,
which JetStream ends with a 404/408 status, so the reader always knows where it stands.

The consumer is ephemeral, unacknowledged and in memory: the lane's committed position (kept in
the positions bucket) is the only durable cursor, so a consumer lost to a restart, a timeout or
an inactivity cleanup is simply recreated from the lane's cursor.
"""

from __future__ import annotations

import contextlib
import logging
import time

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from turnout.log.base import Entry

logger = logging.getLogger("turnout.log.nats")

PULL_TIMEOUT = 5.0  # seconds a no_wait pull may take before the consumer is presumed lost
INACTIVE_THRESHOLD = 600.0  # the server drops a consumer nobody pulled from for this long


def encode_envelope(source: str, person: str, payload: bytes) -> bytes:
    """Source and person travel in the body, not in headers: a user id may hold any character,
    and a header value must not hold a line break."""
    return msgspec.msgpack.encode((source, person, payload))


def decode_entry(msg: Msg) -> Entry:
    source, person, payload = msgspec.msgpack.decode(msg.data, type=tuple[str, str, bytes])
    meta = msg.metadata
    return Entry(
        offset=meta.sequence.stream,
        source=source,
        person=person,
        payload=payload,
        appended_at=meta.timestamp.timestamp(),
    )


class PullReader:
    """Entries of one filter subject, in stream order, read from a given sequence onwards."""

    def __init__(self, nc: Client, js: JetStreamContext, stream: str, subject: str) -> None:
        self._nc = nc
        self._js = js
        self._stream = stream
        self._subject = subject
        self._consumer: str | None = None
        self._after = -1  # the sequence the consumer has delivered up to
        self.more = False  # the last read left entries behind (JetStream's num_pending)
        self._used = 0.0

    async def read(self, after: int, limit: int) -> list[Entry]:
        if (
            self._consumer is None
            or after != self._after
            or time.monotonic() - self._used > INACTIVE_THRESHOLD / 2
        ):
            await self._reset(after)
        self._used = time.monotonic()
        msgs, complete = await self._pull(limit)
        entries = [decode_entry(m) for m in msgs]
        if entries:
            self._after = entries[-1].offset
            self.more = msgs[-1].metadata.num_pending > 0
        else:
            self.more = False
        if not complete:
            await self.close()  # a pull answered in part may still deliver: start afresh
        return entries

    async def _reset(self, after: int) -> None:
        await self.close()
        info = await self._js.add_consumer(
            self._stream,
            api.ConsumerConfig(
                filter_subject=self._subject,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after + 1,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=INACTIVE_THRESHOLD,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        self._consumer = info.name
        self._after = after

    async def _pull(self, batch: int) -> tuple[list[Msg], bool]:
        """One no_wait pull: (messages, whether JetStream said the pull is over)."""
        assert self._consumer is not None
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        msgs: list[Msg] = []
        complete = False
        try:
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._consumer}",
                msgspec.json.encode({"batch": batch, "no_wait": True}),
                reply=inbox,
            )
            deadline = time.monotonic() + PULL_TIMEOUT
            while len(msgs) < batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                status = msg.headers.get("Status") if msg.headers else None
                if status is None and msg.reply:
                    msgs.append(msg)
                    continue
                if status in ("404", "408"):
                    complete = True
                else:  # 409 (consumer gone or changed), 503 (no responders): start afresh
                    logger.info("pull on %s ended with status %s", self._subject, status)
                break
            else:
                complete = True
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return msgs, complete

    async def close(self) -> None:
        if self._consumer is not None:
            name, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self._stream, name)
