"""A call an SDK sends again reaches Customer.io under one dedupe id, whatever its timestamps."""

from __future__ import annotations

from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def test_a_call_without_timestamps_sent_twice_carries_one_dedupe_id(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    """Its corrected time is each attempt's receivedAt, which must not reach the id."""
    sends = emulator.requests.sends_by_id  # every request per event id, re-sends included
    call = {"userId": "u-1", "event": "Resent", "messageId": "m-resent-1"}
    assert turnout.post("/v1/track", call).status_code == 200
    wait_until(lambda: sum(sends.values()) == 1, what="the first send")
    assert turnout.post("/v1/track", call).status_code == 200
    wait_until(lambda: sum(sends.values()) == 2, what="the second send")
    assert list(sends.values()) == [2]  # two requests, one id: Customer.io keeps one event
