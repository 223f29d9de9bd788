"""Accepting calls: authenticate, validate each message, append the good ones, report the rest.

One bad message never costs the good ones around it: a batch is split into raw items first, each
is checked on its own, the valid ones are committed together, and the rejects are answered in the
body (with HTTP 200, which every SDK counts as success, so none resends the good messages) and
recorded where the user can see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from turnout import metrics
from turnout.ingest.errors import IngestError, bad_request, overloaded, unauthorized
from turnout.log.base import EventLog, LogFull, NewEntry
from turnout.spec import message as spec_message
from turnout.spec.normalise import (
    InvalidMessage,
    RawCall,
    RequestFacts,
    decode_batch,
    decode_call,
    normalise,
)
from turnout.store.models import Reject, Source
from turnout.tap import Tap

SUCCESS = b'{"success":true}'


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_messages: int = 2500


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def body(self) -> bytes:
        if not self.rejected:
            return SUCCESS
        return msgspec.json.encode(
            {"success": True, "accepted": self.accepted, "rejected": self.rejected}
        )


class Ingestor:
    def __init__(
        self,
        log: EventLog,
        sources: Callable[[], Mapping[str, Source]],
        record_rejects: Callable[[list[Reject]], Any],
        tap: Tap,
        limits: Limits,
    ) -> None:
        self._log = log
        self._sources = sources
        self._record_rejects = record_rejects
        self._tap = tap
        self.limits = limits

    def _source(self, key: str | None) -> Source | None:
        return self._sources().get(key) if key else None

    async def accept_one(
        self, body: bytes, call_type: str, header_key: str | None, facts: RequestFacts
    ) -> Outcome:
        if len(body) > self.limits.max_message_bytes:
            raise IngestError(
                413,
                "message_too_large",
                f"message of {len(body)} bytes is over the"
                f" {self.limits.max_message_bytes // 1024} KB limit",
            )
        try:
            raw = decode_call(body)
        except InvalidMessage as exc:
            raise bad_request(exc.code, exc.message) from None
        source = self._source(header_key or raw.write_key)
        if source is None:
            raise unauthorized(_key_problem(header_key or raw.write_key))
        try:
            message = normalise(raw, facts, source.name, call_type)
        except InvalidMessage as exc:
            await self._reject(source.name, [(exc.code, exc.message, body)])
            raise bad_request(exc.code, exc.message) from None
        await self._append([message])
        return Outcome(accepted=1)

    async def accept_batch(
        self, body: bytes, header_key: str | None, facts: RequestFacts
    ) -> Outcome:
        try:
            batch = decode_batch(body)
        except InvalidMessage as exc:
            raise bad_request(exc.code, exc.message) from None
        if len(batch.batch) > self.limits.max_batch_messages:
            raise bad_request(
                "too_many_messages",
                f"batch: {len(batch.batch)} messages is over the limit of"
                f" {self.limits.max_batch_messages}",
            )
        if not batch.batch:
            raise bad_request("empty_batch", "batch: contains no messages")
        facts.sent_at, facts.context, facts.integrations = (
            batch.sent_at,
            batch.context,
            batch.integrations,
        )
        request_key = header_key or batch.write_key
        if header_key and self._source(header_key) is None:
            raise unauthorized(_key_problem(header_key))

        messages: list[spec_message.Message] = []
        problems: list[tuple[int, str, str, bytes]] = []
        for index, item in enumerate(batch.batch):
            raw_item = bytes(item)
            if len(raw_item) > self.limits.max_message_bytes:
                problems.append(
                    (
                        index,
                        "message_too_large",
                        f"batch[{index}]: {len(raw_item)} bytes is over the"
                        f" {self.limits.max_message_bytes // 1024} KB message limit",
                        raw_item,
                    )
                )
                continue
            try:
                raw: RawCall = decode_call(item)
                source = self._source(request_key or raw.write_key)
                if source is None:
                    raise InvalidMessage(
                        "invalid_write_key", _key_problem(request_key or raw.write_key)
                    )
                messages.append(normalise(raw, facts, source.name, None))
            except InvalidMessage as exc:
                problems.append((index, exc.code, f"batch[{index}].{exc.message}", raw_item))

        rejected = [{"index": i, "code": code, "message": text} for i, code, text, _ in problems]
        if not messages:
            codes = {p[1] for p in problems}
            if codes == {"invalid_write_key"}:
                raise IngestError(401, "invalid_write_key", problems[0][2], rejected=rejected)
            raise IngestError(400, problems[0][1], problems[0][2], rejected=rejected)
        await self._append(messages)
        if problems:
            source_name = messages[0].source
            await self._reject(source_name, [(code, text, raw) for _, code, text, raw in problems])
        return Outcome(accepted=len(messages), rejected=rejected)

    async def _append(self, messages: list[spec_message.Message]) -> None:
        entries = [
            NewEntry(source=m.source, person=m.person_key, payload=spec_message.encode(m))
            for m in messages
        ]
        try:
            await self._log.append(entries)
        except LogFull as exc:
            raise overloaded(str(exc)) from None
        counts: dict[str, int] = {}
        for m in messages:
            counts[m.source] = counts.get(m.source, 0) + 1
        for source, n in counts.items():
            metrics.INGEST_ACCEPTED.labels(source).inc(n)
        if self._tap.listening:
            for m, entry in zip(messages, entries, strict=True):
                self._tap.publish(
                    {
                        "kind": "received",
                        "message": msgspec.to_builtins(m),
                        "size": len(entry.payload),
                    }
                )

    async def _reject(self, source: str, problems: list[tuple[str, str, bytes]]) -> None:
        now = time.time()
        for code, _, _ in problems:
            metrics.INGEST_REJECTED.labels(code).inc()
        rejects = [
            Reject(
                id=0,
                source=source,
                code=code,
                message=text,
                payload=raw.decode("utf-8", "replace"),
                created_at=now,
            )
            for code, text, raw in problems
        ]
        if self._tap.listening:
            for r in rejects:
                self._tap.publish(
                    {
                        "kind": "rejected",
                        "source": source,
                        "code": r.code,
                        "message": r.message,
                        "payload": r.payload[:2000],
                    }
                )
        await self._record_rejects(rejects)


def _key_problem(key: str | None) -> str:
    if not key:
        return "write key missing: send it as the Basic auth user or as writeKey in the body"
    return "write key not recognised"
