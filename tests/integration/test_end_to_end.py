"""The promise of the product, end to end: calls sent to Turnout reach Customer.io, once."""

from __future__ import annotations

from pathlib import Path

from support import TurnoutProcess, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator, Person


def test_identify_page_track_reach_customerio_as_person_and_activity(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    calls = [
        (
            "/v1/identify",
            {
                "userId": "u-1",
                "anonymousId": "anon-1",
                "traits": {"email": "ada@example.com", "plan": "pro"},
            },
        ),
        (
            "/v1/page",
            {"userId": "u-1", "name": "Pricing", "properties": {"url": "https://x.io/pricing"}},
        ),
        ("/v1/page", {"userId": "u-1", "properties": {"url": "https://x.io/docs"}}),
        ("/v1/track", {"userId": "u-1", "event": "Signed Up", "properties": {"trial": True}}),
    ]
    for path, body in calls:
        response = turnout.post(path, body)
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}

    person = wait_until(
        lambda: (p := emulator.state.person("u-1")) and len(p.activity) == 3 and p,
        what="the person and three activities",
    )
    assert person.email == "ada@example.com"
    assert person.attributes["plan"] == "pro"
    assert [(a.type, a.name) for a in person.activity] == [
        ("page", "Pricing"),
        ("page", "https://x.io/docs"),  # a page without a name is named by its URL
        ("event", "Signed Up"),
    ]
    assert person.activity[2].data == {"trial": True}


def test_batch_is_delivered_in_order_per_person(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    batch = [{"type": "track", "userId": f"u-{i % 3}", "event": f"step {i}"} for i in range(30)]
    assert turnout.post("/v1/batch", {"batch": batch}).status_code == 200
    for person_id in ("u-0", "u-1", "u-2"):

        def ten_events(pid: str = person_id) -> Person | None:
            found = emulator.state.person(pid)
            return found if found and len(found.activity) == 10 else None

        person = wait_until(ten_events, what=f"ten events of {person_id}")
        numbers = [int(a.name.split()[1]) for a in person.activity]
        assert numbers == sorted(numbers)


def test_messages_acknowledged_before_a_restart_are_delivered_once_after_it(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator))
    process = TurnoutProcess(config).start()
    try:
        for i in range(20):
            assert (
                process.post("/v1/track", {"userId": "early", "event": f"before {i}"}).status_code
                == 200
            )
        wait_until(
            lambda: (p := emulator.state.person("early")) and len(p.activity) == 20,
            what="the first twenty events",
        )
        emulator.faults.fail_for(3600, status=503)  # Customer.io is down from here on
        for i in range(20):
            assert (
                process.post("/v1/track", {"userId": "late", "event": f"during {i}"}).status_code
                == 200
            )
    finally:
        process.stop()
    sent_before_restart = len(emulator.requests)
    emulator.faults.clear()

    process = TurnoutProcess(config).start()
    try:
        late = wait_until(
            lambda: (p := emulator.state.person("late")) and len(p.activity) == 20 and p,
            what="the twenty events acknowledged during the outage",
        )
        assert [a.name for a in late.activity] == [f"during {i}" for i in range(20)]
        early = emulator.state.person("early")
        assert early is not None and len(early.activity) == 20
        # Nothing delivered before the restart was sent again after it.
        resent = [
            r for r in list(emulator.requests)[sent_before_restart:] if "early" in str(r.body)
        ]
        assert resent == []
    finally:
        process.stop()


def test_bad_input_gets_a_clear_error_and_spares_the_good_messages(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    import httpx

    no_key = httpx.post(turnout.url + "/v1/track", json={"userId": "x", "event": "e"})
    assert no_key.status_code == 401
    assert "write key" in no_key.json()["message"]
    wrong_key = turnout.post("/v1/track", {"userId": "x", "event": "e"}, write_key="nope")
    assert wrong_key.status_code == 401
    malformed = httpx.post(
        turnout.url + "/v1/track",
        content=b"{not json",
        headers={"Authorization": "Basic d2tfdGVzdDo="},
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_json"
    no_identity = turnout.post("/v1/track", {"event": "e"})
    assert no_identity.status_code == 400
    assert "userId or anonymousId" in no_identity.json()["message"]

    mixed = turnout.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "good", "event": "kept 1"},
                {"type": "track", "event": "no identity"},
                {"type": "nonsense", "userId": "good"},
                {"type": "track", "userId": "good", "event": "kept 2"},
            ]
        },
    )
    assert mixed.status_code == 200
    body = mixed.json()
    assert body["success"] is True
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    good = wait_until(
        lambda: (p := emulator.state.person("good")) and len(p.activity) == 2 and p,
        what="the two good events",
    )
    assert [a.name for a in good.activity] == ["kept 1", "kept 2"]
    assert httpx.get(turnout.url + "/health").status_code == 200
