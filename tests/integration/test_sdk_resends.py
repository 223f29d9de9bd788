"""A call an SDK sends again reaches Customer.io under one dedupe id, whatever its timestamps."""

from __future__ import annotations

from collections import Counter

from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def _event_ids(emulator: CustomerIOEmulator) -> Counter[str]:
    """The `id` of every event item in every request the emulator answered 200 (re-sends too)."""
    ids: Counter[str] = Counter()
    for request in list(emulator.requests):
        if request.status != 200 or not isinstance(request.body, dict):
            continue
        for item in request.body.get("batch", [request.body]):
            if isinstance(item, dict) and item.get("id"):
                ids[item["id"]] += 1
    return ids


def test_a_call_without_timestamps_sent_twice_carries_one_dedupe_id(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    """Its corrected time is each attempt's receivedAt, which must not reach the id."""
    call = {"userId": "u-1", "event": "Resent", "messageId": "m-resent-1"}
    assert turnout.post("/v1/track", call).status_code == 200
    wait_until(lambda: sum(_event_ids(emulator).values()) == 1, what="the first send")
    assert turnout.post("/v1/track", call).status_code == 200
    sent = wait_until(
        lambda: (ids := _event_ids(emulator)) and sum(ids.values()) == 2 and ids,
        what="the second send",
    )
    assert list(sent.values()) == [2]  # two requests, one id: Customer.io keeps one event
