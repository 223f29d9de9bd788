"""A batch takes one of two paths: all valid (decoded in one pass) or item by item.

The fast path must store exactly what the item-by-item path stores, and must send every batch it
cannot vouch for down the other path: these tests compare the two on the same items.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.ingest import accept
from turnout.ingest.accept import Ingestor, Limits
from turnout.ingest.errors import IngestError
from turnout.log.base import NewEntry
from turnout.spec.incoming import MAX_DEPTH
from turnout.spec.message import CALL_TYPES
from turnout.spec.normalise import RequestFacts
from turnout.store.models import Source
from turnout.tap import Tap

RECEIVED_AT = datetime(2026, 11, 29, 7, 0, 0, 123456, tzinfo=UTC)  # both paths, the same moment
SOURCES = {"wk_web": Source(name="web", write_key="wk_web"), "wk_app": Source("app", "wk_app")}

ITEMS: list[dict[str, Any]] = [
    {"type": "track", "userId": "u1", "event": "A", "messageId": "m1", "properties": {"x": 1}},
    {"type": "identify", "userId": 42, "messageId": 7, "traits": {"plan": "pro"}},
    {"type": "page", "anonymousId": 3.0, "messageId": "m3", "context": {"ip": "9.9.9.9"}},
    {"type": "screen", "userId": "u2", "messageId": "m4", "context": {"locale": "fr"}},
    {"type": "group", "userId": "u1", "groupId": 12, "messageId": "m5", "traits": None},
    {"type": "alias", "userId": "u3", "previousId": "a3", "messageId": "m6", "context": {}},
    {
        "type": "track",
        "userId": "u1",
        "event": "B",
        "messageId": "m7",
        "originalTimestamp": "2026-11-28T10:00:00.250+02:00",
        "timestamp": "2026-11-28T09:00:00Z",
        "sentAt": "2026-11-28T10:00:05+02:00",
        "integrations": {"All": False, "Customer.io": True},
    },
    {"type": "track", "userId": "u4", "event": "C", "messageId": "m8", "writeKey": "wk_app"},
    {"type": "track", "userId": "u5", "event": "D", "messageId": "m9", "timestamp": "2026-11-28"},
]
ENVELOPES: list[dict[str, Any]] = [
    {},
    {"sentAt": "2026-11-28T10:00:03.000Z"},
    {"context": {"library": {"name": "x"}, "ip": "1.1.1.1"}, "integrations": {"All": True}},
]


class _Log:
    def __init__(self) -> None:
        self.entries: list[NewEntry] = []

    async def append(self, entries: list[NewEntry]) -> None:
        self.entries.extend(entries)


def _accept(
    items: list[dict[str, Any]], envelope: dict[str, Any], header_key: str | None
) -> list[NewEntry]:
    log = _Log()
    rejects: list[Any] = []

    async def record(found: list[Any]) -> None:
        rejects.extend(found)

    ingestor = Ingestor(log, lambda: SOURCES, record, Tap(), Limits())  # type: ignore[arg-type]
    body = msgspec.json.encode({**envelope, "batch": items, "writeKey": "wk_web"})
    facts = RequestFacts(received_at=RECEIVED_AT, ip="10.0.0.1")
    with contextlib.suppress(IngestError):  # nothing valid at all: both paths refuse alike
        asyncio.run(ingestor.accept_batch(body, header_key, facts))
    return log.entries


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("header_key", ["wk_web", None])
def test_the_fast_path_stores_what_the_item_by_item_path_stores(
    envelope: dict[str, Any], header_key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:  # the valid batch never goes item by item
        patched.setattr(accept, "decode_call", _not_item_by_item)
        fast = _accept(ITEMS, envelope, header_key)
    # One bad item sends the whole batch down the item-by-item path; the rest is the same.
    slow = _accept([*ITEMS, {"type": "track", "event": "no identity"}], envelope, header_key)
    assert len(fast) == len(ITEMS)
    assert [(e.source, e.person) for e in fast] == [(e.source, e.person) for e in slow]
    assert [msgspec.json.decode(e.payload) for e in fast] == [
        msgspec.json.decode(e.payload) for e in slow
    ]


def _not_item_by_item(*args: Any) -> Any:
    raise AssertionError("a valid batch was taken item by item")


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_an_item_nested_past_the_limit_is_refused_and_the_others_kept() -> None:
    deep = {"type": "track", "userId": "u", "event": "deep", "properties": _nested(MAX_DEPTH)}
    kept = _accept([ITEMS[0], deep, ITEMS[3]], {}, "wk_web")
    assert [e.person for e in kept] == ["u1", "u2"]
    # ... while nesting up to the limit is kept, by the fast path.
    fine = {**deep, "properties": _nested(MAX_DEPTH - 1)}
    assert len(_accept([ITEMS[0], fine], {}, "wk_web")) == 2


EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "150"))
ids = st.text(max_size=12) | st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.none()
VALID_MOMENTS = [
    "2026-11-28T10:00:00.123Z",
    "2026-11-28T10:00:00+05:30",
    "2026-11-28t10:00:00z",
    "2026-11-28 10:00:00",
    "2026-11-28",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999Z",
]
valid_moments = st.sampled_from(VALID_MOMENTS)
moments = st.sampled_from([*VALID_MOMENTS, "not a time"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(
    st.sampled_from(["ip", "library", "locale", "page", "x"]), json_values, max_size=4
)
names = st.text(min_size=1, max_size=8)
OPTIONAL = {
    "anonymousId": ids,
    "messageId": names,
    "name": st.text(max_size=8),
    "traits": objects | st.none(),
    "properties": objects,
    "context": objects | st.none(),
    "integrations": objects,
    "writeKey": st.sampled_from(["wk_web", "wk_app"]),
}
# Anything goes: most such items are wrong somewhere, which sends their batch item by item.
wild_items = st.fixed_dictionaries(
    {"type": st.sampled_from([*CALL_TYPES, "bogus"])},
    optional={
        **OPTIONAL,
        "userId": ids,
        "event": st.text(max_size=8) | st.none(),
        "groupId": ids,
        "previousId": ids,
        "timestamp": moments,
        "originalTimestamp": moments,
        "sentAt": moments,
    },
)
_REQUIRED = {"track": {"event": names}, "group": {"groupId": names}, "alias": {"previousId": names}}


def _valid(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    required = {"type": st.just(kind), "userId": names | st.integers(0, 10**6)}
    optional = {
        **OPTIONAL,
        "timestamp": valid_moments,
        "originalTimestamp": valid_moments,
        "sentAt": valid_moments,
    }
    return st.fixed_dictionaries({**required, **_REQUIRED.get(kind, {})}, optional=optional)


valid_items = st.sampled_from(CALL_TYPES).flatmap(_valid)
generated_items = st.one_of(valid_items, valid_items, valid_items, wild_items)
envelopes = st.fixed_dictionaries(
    {}, optional={"sentAt": valid_moments, "context": objects, "integrations": objects}
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(generated_items, min_size=1, max_size=6), envelope=envelopes)
def test_whatever_the_items_both_paths_keep_the_same_messages(
    items: list[dict[str, Any]], envelope: dict[str, Any]
) -> None:
    items = [{**item, "messageId": item.get("messageId", f"m{i}")} for i, item in enumerate(items)]
    either = _accept(items, envelope, "wk_web")
    slow = _accept([*items, {"type": "track", "event": "no identity"}], envelope, "wk_web")
    assert [(e.source, e.person, msgspec.json.decode(e.payload)) for e in either] == [
        (e.source, e.person, msgspec.json.decode(e.payload)) for e in slow
    ]
