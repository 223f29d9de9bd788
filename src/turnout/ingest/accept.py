"""Accepting calls: authenticate, validate each message, append the good ones, report the rest.

One bad message never costs the good ones around it: a batch is split into raw items first, each
is checked on its own, the valid ones are committed together, and the rejects are answered in the
body (with HTTP 200: rudder-sdk-python resends a whole batch on anything else, 207 included) and
recorded where the user can see them (the store's rejects, the debugger tap, a counter).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from turnout import metrics
from turnout.ingest.errors import IngestError, bad_request, overloaded, too_large, unauthorized
from turnout.log.base import EventLog, LogFull, NewEntry
from turnout.privacy.suppression import PrivacyList
from turnout.spec.incoming import (
    Incoming,
    IncomingBatch,
    InvalidMessage,
    any_too_deep,
    check_utf8,
    decode_batch,
    decode_call,
    decode_calls,
    decode_deep_batch,
)
from turnout.spec.message import decode as decode_message
from turnout.spec.normalise import RequestFacts, normalise
from turnout.store.models import Reject, Source
from turnout.tap import Tap

SUCCESS = b'{"success":true}'

logger = logging.getLogger("turnout.ingest")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Limits:
    """Segment's limits, which every SDK already splits its batches to fit."""

    max_message_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_messages: int = 2500


# What a stored message may hold beyond the client's own bytes: the fields Turnout fills in
# (messageId, receivedAt, timestamp, originalTimestamp, sentAt, context.ip, source) and ids sent
# as numbers made text. A stored message is never larger than the message limit plus this.
STORED_OVERHEAD_BYTES = 4 * 1024
# How much a batch's envelope (its `context` and `integrations`, copied into every item) may add
# to what the request stores: its own size, or this floor for small requests. Real SDKs send a
# few dozen bytes of library facts there, if anything; without a bound, a 400 KB context copied
# into 250 tiny items made one 413 KB request store 187 MB.
ENVELOPE_COPIES_FLOOR_BYTES = 16 * 1024


@dataclass(slots=True)
class _Problem:
    """One rejected message: where it was, why, and its bytes (kept for the user to see)."""

    index: int | None
    code: str
    message: str
    payload: bytes
    source: str | None

    def report(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> bytes:
        if not self.rejected:
            return SUCCESS
        return _encode({"success": True, "accepted": self.accepted, "rejected": self.rejected})


class Ingestor:
    def __init__(
        self,
        log: EventLog,
        sources: Callable[[], Mapping[str, Source]],
        record_rejects: Callable[[list[Reject]], Any],
        tap: Tap,
        limits: Limits,
        privacy: PrivacyList | None = None,
    ) -> None:
        self._log = log
        self._privacy = privacy
        self._suppressed_by_source: dict[str, Any] = {}
        self._sources = sources
        self._record_rejects = record_rejects
        self._tap = tap
        self.limits = limits
        self._accepted_by_source: dict[str, Any] = {}

    def _accepted(self, source: str) -> Any:
        """The source's counter, looked up once: `labels()` costs a lock and 1.5 us a call."""
        child = self._accepted_by_source.get(source)
        if child is None:
            child = self._accepted_by_source[source] = metrics.INGEST_ACCEPTED.labels(source)
        return child

    def _source(self, key: str | None) -> Source | None:
        return self._sources().get(key) if key else None

    def _known_source(self, header_key: str | None) -> Source | None:
        """The source a header names; a header naming no source can never succeed."""
        if header_key is None:
            return None
        source = self._source(header_key)
        if source is None:
            raise unauthorized(_key_problem(header_key))
        return source

    async def accept_one(
        self, body: bytes, call_type: str, header_key: str | None, facts: RequestFacts
    ) -> Outcome:
        """One call on `/v1/<type>`: answered 200 only once it is committed."""
        header_source = self._known_source(header_key)
        if len(body) > self.limits.max_message_bytes:
            raise IngestError(
                413,
                "message_too_large",
                f"body: {len(body)} bytes is over the"
                f" {self.limits.max_message_bytes // 1024} KB message limit",
            )
        source = header_source
        try:
            check_utf8(body)
            call = decode_call(body)
            if source is None:
                source = self._source(call.write_key)
                if source is None:
                    raise unauthorized(_key_problem(call.write_key))
            normalise(call, facts, source.name, call_type)
        except InvalidMessage as exc:
            problem = _Problem(None, exc.code, exc.message, body, source.name if source else None)
            await self._reject([problem])
            raise bad_request(exc.code, exc.message) from None
        await self._append([call], [_encode(call)])
        return Outcome(accepted=1)

    async def accept_batch(
        self, body: bytes, header_key: str | None, facts: RequestFacts
    ) -> Outcome:
        """A batch: the valid items are committed together, the others reported and recorded."""
        header_source = self._known_source(header_key)
        try:
            check_utf8(body)
            try:
                batch = decode_batch(body)
            except InvalidMessage as exc:
                if exc.code != "too_deep":
                    raise
                batch = await asyncio.to_thread(decode_deep_batch, body)
        except InvalidMessage as exc:
            if header_source is not None:
                await self._reject(
                    [_Problem(None, exc.code, exc.message, body, header_source.name)]
                )
            raise bad_request(exc.code, exc.message) from None
        if len(batch.batch) > self.limits.max_batch_messages:
            # 413, not 400: an SDK that splits batches on 413 (MetaRouter's) then loses nothing.
            raise too_large(
                f"batch: {len(batch.batch)} messages is over the limit of"
                f" {self.limits.max_batch_messages}",
                code="too_many_messages",
            )
        if not batch.batch:
            raise bad_request("empty_batch", "batch: contains no messages")
        try:
            self._check_envelope(batch, len(body))
        except IngestError as exc:
            source = header_source or self._source(batch.write_key)
            await self._reject(
                [_Problem(None, exc.code, exc.message, body, source.name if source else None)]
            )
            raise
        facts.sent_at, facts.context, facts.integrations = (
            batch.sent_at,
            batch.context,
            batch.integrations,
        )
        if batch.sent_at is not None:
            # Checked even when every item carries its own: a malformed timestamp is refused
            # wherever it stands, as one in an item is.
            try:
                facts.sent_moment(batch.sent_at)
            except InvalidMessage as exc:
                raise bad_request(exc.code, exc.message) from None
        batch_source = header_source or self._source(batch.write_key)
        accepted = self._accept_all(batch.batch, header_source, batch_source, facts)
        if accepted is not None:
            await self._append(*accepted)
            return Outcome(accepted=len(accepted[0]))
        calls: list[Incoming] = []
        payloads: list[bytes] = []
        problems: list[_Problem] = []
        for index, item in enumerate(batch.batch):
            where = f"batch[{index}]"
            source = batch_source
            try:
                if len(item) > self.limits.max_message_bytes:
                    raise InvalidMessage(
                        "message_too_large",
                        f"{where}: {len(item)} bytes is over the"
                        f" {self.limits.max_message_bytes // 1024} KB message limit",
                    )
                call = decode_call(item, where + ".")
                if header_source is None and call.write_key:
                    source = self._source(call.write_key)
                if source is None:
                    raise InvalidMessage(
                        "invalid_write_key",
                        f"{where}: {_key_problem(call.write_key or batch.write_key)}",
                    )
                try:
                    normalise(call, facts, source.name, None)
                except InvalidMessage as exc:
                    exc.message = f"{where}.{exc.message}"
                    raise
                payload = _encode(call)
                self._check_stored_size(payload, where)
                calls.append(call)
                payloads.append(payload)
            except InvalidMessage as exc:
                problems.append(
                    _Problem(
                        index, exc.code, exc.message, bytes(item), source.name if source else None
                    )
                )

        rejected = [p.report() for p in problems]
        if not calls:
            await self._reject(problems)
            first = problems[0]
            if all(p.code == "invalid_write_key" for p in problems):
                raise IngestError(401, first.code, first.message, rejected=rejected)
            raise IngestError(400, first.code, first.message, rejected=rejected)
        await self._append(calls, payloads)
        if problems:
            await self._reject(problems)
        return Outcome(accepted=len(calls), rejected=rejected)

    def _accept_all(
        self,
        items: list[msgspec.Raw],
        header_source: Source | None,
        batch_source: Source | None,
        facts: RequestFacts,
    ) -> tuple[list[Incoming], list[bytes]] | None:
        """The batch as SDKs send it, every item valid: its calls and their stored bytes.

        The common case costs a third of taking each item on its own: the items are decoded in
        one pass of C, and nothing is done twice. None when any item is wrong in any way; the
        caller then takes them one by one, to keep the good ones and say what is wrong with each
        of the others.
        """
        if max(map(len, items)) > self.limits.max_message_bytes:
            return None
        calls = decode_calls(items)
        if calls is None:
            return None
        try:
            for call in calls:
                source = batch_source
                if header_source is None and call.write_key:
                    source = self._source(call.write_key)
                if source is None:
                    return None
                normalise(call, facts, source.name, None)
        except InvalidMessage:
            return None
        payloads = list(map(_encode, calls))
        if max(map(len, payloads)) > self.limits.max_message_bytes + STORED_OVERHEAD_BYTES:
            return None
        if any_too_deep(payloads):
            return None
        return calls, payloads

    def _check_envelope(self, batch: IncomingBatch, request_bytes: int) -> None:
        """Refuse a batch whose envelope, copied into every item, would store far more than sent.

        Checked before any item is merged, so the refused request costs no more memory than its
        own size. The envelope is copied whole into each item (an item's own keys win, which
        only makes the copy smaller), so this bounds what the merge can add.
        """
        size = _envelope_bytes(batch)
        if not size:
            return
        limit = self.limits.max_message_bytes
        if size > limit:
            raise too_large(
                f"context: the batch-level context and integrations are {size} bytes, over the"
                f" {limit // 1024} KB message limit (they are copied into every message)",
                code="envelope_too_large",
            )
        copies = size * len(batch.batch)
        allowed = max(request_bytes, ENVELOPE_COPIES_FLOOR_BYTES)
        if copies > allowed:
            raise too_large(
                f"context: the batch-level context and integrations ({size} bytes) copied into"
                f" each of {len(batch.batch)} messages would add {copies} bytes to a"
                f" {request_bytes}-byte request (at most {allowed}); send them inside each"
                " message or in smaller batches",
                code="envelope_too_large",
            )

    def _check_stored_size(self, payload: bytes, where: str) -> None:
        """A message as stored, with the batch's envelope merged in, is held to the limit too."""
        limit = self.limits.max_message_bytes
        if len(payload) > limit + STORED_OVERHEAD_BYTES:
            raise InvalidMessage(
                "message_too_large",
                f"{where}: {len(payload)} bytes once the batch-level context is merged in,"
                f" over the {limit // 1024} KB message limit",
            )

    def _unsuppressed(
        self, calls: list[Incoming], payloads: list[bytes]
    ) -> tuple[list[Incoming], list[bytes]]:
        """The calls of people not suppressed: the others are answered as accepted, counted,
        and neither stored nor delivered. Two set lookups a call, whatever the list's size."""
        privacy = self._privacy
        if privacy is None or not (privacy.users or privacy.anonymous):
            return calls, payloads
        users, anonymous = privacy.users, privacy.anonymous
        keep = [
            i
            for i, c in enumerate(calls)
            if c.user_id not in users and c.anonymous_id not in anonymous
        ]
        if len(keep) == len(calls):
            return calls, payloads
        kept = set(keep)
        for i, call in enumerate(calls):
            if i not in kept:
                source = call.source or ""
                counter = self._suppressed_by_source.get(source)
                if counter is None:
                    counter = metrics.INGEST_SUPPRESSED.labels(source)
                    self._suppressed_by_source[source] = counter
                counter.inc()
        return [calls[i] for i in keep], [payloads[i] for i in keep]

    async def _append(self, calls: list[Incoming], payloads: list[bytes]) -> None:
        calls, payloads = self._unsuppressed(calls, payloads)
        if not calls:
            return
        entries = [  # the person is `spec.message.person_key`, inline: a call costs more per item
            NewEntry(c.source or "", c.user_id or c.anonymous_id or "", payload)  # type: ignore[arg-type]
            for c, payload in zip(calls, payloads, strict=True)
        ]
        try:
            await self._log.append(entries)
        except LogFull as exc:
            raise overloaded(str(exc)) from None
        source = calls[0].source or ""
        if all(c.source == source for c in calls):
            self._accepted(source).inc(len(calls))
        else:
            for c in calls:
                self._accepted(c.source or "").inc()
        if self._tap.listening:
            for entry in entries:
                self._tap.publish(
                    {
                        "kind": "received",
                        "message": msgspec.to_builtins(decode_message(entry.payload)),
                        "size": len(entry.payload),
                    }
                )

    async def _reject(self, problems: list[_Problem]) -> None:
        """Count every reject; keep those whose source is known where its owner can see them."""
        now = time.time()
        for problem in problems:
            metrics.INGEST_REJECTED.labels(problem.code).inc()
        rejects = [
            Reject(
                id=0,
                source=p.source,
                code=p.code,
                message=p.message,
                payload=p.payload.decode("utf-8", "replace"),
                created_at=now,
            )
            for p in problems
            if p.source is not None
        ]
        if not rejects:
            return
        if self._tap.listening:
            for r in rejects:
                self._tap.publish(
                    {
                        "kind": "rejected",
                        "source": r.source,
                        "code": r.code,
                        "message": r.message,
                        "payload": r.payload[:2000],
                    }
                )
        try:
            await self._record_rejects(rejects)
        except Exception:  # the answer must not fail because the record of a reject did
            logger.exception("could not record %d rejected messages", len(rejects))


def _envelope_bytes(batch: IncomingBatch) -> int:
    """The encoded size of what a batch's envelope copies into each of its items."""
    size = 0
    if batch.context:
        size += len(_encode(batch.context))
    if batch.integrations:
        size += len(_encode(batch.integrations))
    return size


def _key_problem(key: str | None) -> str:
    if not key:
        return "write key missing: send it as the Basic auth user or as writeKey in the body"
    return "write key not recognised"
