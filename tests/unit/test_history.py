"""Looking back at stored calls reads the same from the SQLite log and from the NATS log (real
JetStream): one person's calls in order and page by page, and the newest calls that pass a
filter, each with its fates from the store."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from services import require_nats, unique
from turnout.config import LogConfig
from turnout.history import History, call_label
from turnout.log.base import EventLog, NewEntry
from turnout.log.sqlite import SQLiteLog
from turnout.spec.message import Message, encode
from turnout.store.models import DeliveryRecord, Fate
from turnout.store.sqlite import Store


@pytest.fixture(params=["sqlite", pytest.param("nats", marks=pytest.mark.services)])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "sqlite":
        made: EventLog = SQLiteLog(tmp_path / "log.db", synchronous="OFF")
        await made.start()
        yield made
        await made.close()
        return
    from turnout.log.nats import NATSLog

    stream = unique("thist")
    nats_log = NATSLog(LogConfig(backend="nats", url=require_nats(), stream=stream, partitions=4))
    await nats_log.start()
    try:
        yield nats_log
    finally:
        await nats_log.js.delete_stream(stream)
        await nats_log.js.delete_key_value(f"{stream}-positions")
        await nats_log.close()


def call(index: int, user: str | None, anonymous: str | None = None, **fields: Any) -> NewEntry:
    message = Message(
        type="track",
        message_id=f"m-{index}",
        received_at="2026-01-05T10:00:00.000Z",
        timestamp="2026-01-05T10:00:00.000Z",
        user_id=user,
        anonymous_id=anonymous,
        event=f"E{index}",
        source="web",
        **fields,
    )
    return NewEntry("web", message.person_key, encode(message))


async def test_one_persons_calls_in_order_page_by_page_with_their_fates(
    log: EventLog, store: Store
) -> None:
    entries = [
        call(0, None, "ada"),  # an anonymousId that happens to equal the userId looked up
        call(1, "ada", "a-1"),
        call(2, "bob"),
        call(3, "ada"),
        call(4, None, "a-1"),
        call(5, "ada"),
    ]
    await log.append(entries)
    offsets = {e.offset: e for e in await log.read(0, 10)}
    by_id = {f"m-{i}": offset for i, offset in enumerate(sorted(offsets))}
    await store.record(
        [
            DeliveryRecord("cio", by_id["m-1"], "m-1", "ada", Fate.DELIVERED),
            DeliveryRecord("cio", by_id["m-3"], "m-3", "ada", Fate.FILTERED, detail="rule"),
            DeliveryRecord("hook", by_id["m-3"], "m-3", "ada", Fate.DELIVERED),
        ]
    )
    history = History(log, store)

    first = await history.person("userId", "ada", limit=2)
    assert [c.message_id for c in first.calls] == ["m-1", "m-3"]
    assert [[(r.connection, r.fate) for r in c.fates] for c in first.calls] == [
        [("cio", Fate.DELIVERED)],
        [("cio", Fate.FILTERED), ("hook", Fate.DELIVERED)],
    ]
    assert first.more_after == by_id["m-3"]
    rest = await history.person("userId", "ada", after=by_id["m-3"], limit=2)
    assert ([c.message_id for c in rest.calls], rest.more_after) == (["m-5"], None)
    assert rest.calls[0].fates == []

    anonymous = await history.person("anonymousId", "a-1")
    assert [c.message_id for c in anonymous.calls] == ["m-4"]  # m-1 is filed under its userId
    assert [c.message_id for c in (await history.person("anonymousId", "ada")).calls] == ["m-0"]
    assert (await history.person("userId", "nobody")).calls == []


async def test_the_newest_calls_that_pass_a_filter_oldest_first(
    log: EventLog, store: Store
) -> None:
    await log.append([call(i, f"u{i % 100}") for i in range(1200)])  # three steps back
    history = History(log, store)

    newest = await history.recent(lambda m: True, 3)
    assert [c.message_id for c in newest] == ["m-1197", "m-1198", "m-1199"]
    sevens = await history.recent(lambda m: m["userId"] == "u7", 4)
    assert [c.message_id for c in sevens] == ["m-807", "m-907", "m-1007", "m-1107"]
    # Only the newest `scan` offsets are looked through.
    assert [c.message_id for c in await history.recent(lambda m: m["userId"] == "u7", 9, 600)] == [
        "m-607",
        "m-707",
        "m-807",
        "m-907",
        "m-1007",
        "m-1107",
    ]


def test_a_call_is_listed_by_its_name_or_what_identifies_it() -> None:
    assert call_label({"type": "track", "event": "Signed Up"}) == "Signed Up"
    assert call_label({"type": "page", "name": "Pricing", "properties": {"url": "u"}}) == "Pricing"
    page = {"type": "page", "context": {"page": {"url": "https://x.test/a"}}}
    assert call_label(page) == "https://x.test/a"
    assert call_label({"type": "page", "properties": {"url": "https://x.test/b"}}) == (
        "https://x.test/b"
    )
    assert call_label({"type": "page", "context": {"page": "odd"}}) == "page"
    assert call_label({"type": "identify", "context": {"traits": {"email": "a@x.test"}}}) == (
        "identify · a@x.test"
    )
    assert call_label({"type": "group", "groupId": "g1"}) == "group g1"
    assert call_label({"type": "alias", "previousId": "p0"}) == "alias of p0"
    assert call_label({"type": "screen"}) == "screen"
