"""Injected failures, rate limits and revoked keys: what a client sees when Customer.io fails."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from support import started_url, wait_until
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

SITE, KEY = "S", "K"


@pytest.fixture(scope="module")
def server() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id=SITE, api_key=KEY), seed=7) as emu:
        yield emu


@pytest.fixture
def emu(server: CustomerIOEmulator) -> Iterator[CustomerIOEmulator]:
    original = msgspec.structs.asdict(server.config)
    server.reset()
    yield server
    server.reset()
    server.configure(**original)


@pytest.fixture
def client(emu: CustomerIOEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=started_url(emu), auth=(SITE, KEY), timeout=5) as c:
        yield c


def identify(client: httpx.Client, who: str = "u1") -> httpx.Response:
    return client.put(f"/api/v1/customers/{who}", json={"a": 1})


def test_fail_next_answers_status_then_recovers(
    client: httpx.Client, emu: CustomerIOEmulator
) -> None:
    emu.faults.fail_next(2, status=503)
    assert [identify(client).status_code for _ in range(3)] == [503, 503, 200]
    assert emu.requests.by_status[503] == 2
    assert [r.fault for r in emu.requests] == ["status 503", "status 503", None]
    person = emu.state.person("u1")
    assert person is not None  # only the successful call was applied


def test_throttle_sends_retry_after(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.throttle_next(1, retry_after=2)
    r = identify(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert emu.state.person("u1") is None


def test_fail_for_a_duration(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    added = time.time()
    emu.faults.fail_for(1.0, status=500)
    wait_until(lambda: identify(client).status_code == 200, timeout=30, what="the outage's end")
    # By the emulator's clock: 500 while the outage lasted, 200 once it was over.
    answers = [(r.received_at - added, r.status) for r in emu.requests]
    assert answers[0][1] == 500 and answers[-1][1] == 200, answers
    assert all(status == 500 for at, status in answers if at < 0.95), answers
    assert all(status == 200 for at, status in answers if at > 1.05), answers


def test_fail_a_fraction(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.fail_fraction(0.5, status=502)
    statuses = [identify(client, f"u{i}").status_code for i in range(200)]
    assert 50 < statuses.count(502) < 150
    assert len(emu.state.people) == statuses.count(200)


def test_fault_limited_to_a_path(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.fail_next(1, status=503, path_prefix="/api/v2/")
    assert identify(client).status_code == 200
    assert client.post("/api/v2/batch", json={"batch": []}).status_code == 503


def test_hang_makes_the_client_time_out(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.hang_next(1, seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        client.put("/api/v1/customers/u1", json={}, timeout=0.3)
    assert identify(client).status_code == 200


def test_hang_answers_504_when_the_client_waits_it_out(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    emu.faults.hang_next(1, seconds=0.2)
    assert identify(client).status_code == 504


def test_drop_closes_the_connection_without_an_answer(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    emu.faults.drop_next(1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        identify(client)
    assert identify(client).status_code == 200
    assert emu.requests[0].status == -1


def test_revoked_key_gets_401_until_restored(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.revoke_key()
    assert identify(client).status_code == 401
    emu.faults.set_credentials(api_key=KEY)
    assert identify(client).status_code == 200


def test_rate_limit_token_bucket(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.faults.rate_limit(5, 25.0)  # a burst of 5, then one every 5 s: none refills below
    statuses = [identify(client).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429, 429]
    r = identify(client)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 5

    emu.faults.rate_limit(1, 0.2)  # one at a time, refilled at 5/s
    assert identify(client).status_code == 200
    wait_until(lambda: identify(client).status_code == 200, timeout=30, what="a refilled token")
    first, second = [r.received_at for r in emu.requests if r.status == 200][-2:]
    assert second - first >= 0.2 - 0.02  # not before the bucket refilled (emulator's clock)
    emu.faults.rate_limit(None)
    assert all(identify(client).status_code == 200 for _ in range(20))


def test_rate_limit_from_config_defaults_to_3000_per_3s() -> None:
    config = EmulatorConfig(rate_limit_enabled=True)
    emu = CustomerIOEmulator(config)
    assert emu.limiter is not None and emu.limiter.capacity == 3000 and emu.limiter.rate == 1000


def test_faults_over_http(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    control = f"{emu.url}/_emulator/faults"
    r = httpx.post(control, json={"kind": "status", "status": 500, "count": 1})
    assert r.status_code == 200 and r.json()["faults"][0]["status"] == 500
    assert identify(client).status_code == 500
    httpx.post(control, json={"status": 429, "retry_after": 3, "count": 1})
    assert identify(client).headers["retry-after"] == "3"
    httpx.post(control, json={"credentials": {"api_key": "new-key"}})
    assert identify(client).status_code == 401
    assert (
        httpx.put(f"{emu.url}/api/v1/customers/u1", json={}, auth=(SITE, "new-key")).status_code
        == 200
    )
    httpx.post(control, json={"credentials": {"api_key": KEY}})
    httpx.post(control, json={"rate_limit": {"requests": 1, "period": 10}})
    assert [identify(client).status_code for _ in range(2)] == [200, 429]
    httpx.post(control, json={"rate_limit": None, "kind": "drop", "count": 1})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        identify(client)
    httpx.post(control, json={"status": 503})  # until cleared
    assert identify(client).status_code == 503
    httpx.post(control, json={"clear": True})
    assert identify(client).status_code == 200
    assert httpx.post(control, json={"kind": "explode"}).status_code == 400


def test_config_over_http(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    r = httpx.post(f"{emu.url}/_emulator/config", json={"unknown_person_events": "drop"})
    assert r.status_code == 200 and r.json()["unknown_person_events"] == "drop"
    client.post("/api/v1/customers/nobody/events", json={"name": "e"})
    assert emu.state.person("nobody") is None
    assert httpx.post(f"{emu.url}/_emulator/config", json={"no_such": 1}).status_code == 400
    assert (
        httpx.post(
            f"{emu.url}/_emulator/config", json={"unknown_person_events": "maybe"}
        ).status_code
        == 400
    )


def test_request_record_is_bounded_but_counts_stay_exact(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    emu.configure(record_limit=10)
    for i in range(25):
        identify(client, f"u{i}")
    assert len(emu.requests) == 10 and emu.requests.total == 25
    assert emu.requests.by_endpoint["PUT /api/v1/customers/{identifier}"] == 25
    assert len(emu.state.people) == 25
