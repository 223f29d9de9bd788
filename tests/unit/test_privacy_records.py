"""The privacy tables and the store erasure, on both store backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from test_postgres_store import store  # noqa: F401  (the fixture: both backends)

from turnout.privacy.erase import erase_store
from turnout.privacy.records import PrivacyRecords, RequestRow
from turnout.store.models import DeadLetter, DeliveryRecord, Fate, Reject


async def test_a_request_and_its_list_changes_are_kept_together(store: Any) -> None:  # noqa: F811
    records = PrivacyRecords(store)
    await records.start()
    row = RequestRow("pr_1", "suppress", "cli", 1.0, "done", "{}", "hashed", 1, 0, 7)
    await records.add_request(row, [("k1", "user", "sealed-1")], [], [("m1", 7)])
    assert await records.version() == 1
    assert await records.suppressions() == [("user", "sealed-1")]
    assert await records.markers() == {"m1": 7}
    again = RequestRow("pr_2", "unsuppress", "api", 2.0, "done", "{}", "hashed", 1, 0, 7)
    await records.add_request(again, [], ["k1"])
    assert await records.version() == 2
    assert await records.suppressions() == []
    listed = await records.requests()
    assert [(r.id, r.requested_by, r.log_head) for r in listed] == [
        ("pr_2", "api", 7),
        ("pr_1", "cli", 7),
    ]


async def test_erasing_removes_the_persons_records_only(store: Any) -> None:  # noqa: F811
    now = time.time()
    gone, kept = "del_1%", "keep"  # LIKE wildcards in an id are taken literally
    await store.record(
        [
            DeliveryRecord("cio", 1, "m1", gone, Fate.DELIVERED),
            DeliveryRecord("cio", 2, "m2", kept, Fate.DELIVERED),
        ]
    )
    letter = DeadLetter(0, "cio", 3, "m3", gone, "r", "", "", b"{}", now)
    await store.add_dead_letters([letter])
    await store.add_rejects(
        [
            Reject(0, "web", "c", "m", '{"userId": "del_1%", "x": 1}', now),
            Reject(0, "web", "c", "m", '{"userId": "del_12"}', now),
        ]
    )
    removed = await erase_store(store, [gone], [gone])
    assert removed == {"deliveries": 1, "dead_letters": 1, "rejects": 1}
    assert [r.person for r in await store.trace("m2")] == [kept]
    assert await store.trace("m1") == []
    assert await store.dead_letters() == []
    assert [r.payload for r in await store.rejects()] == ['{"userId": "del_12"}']
