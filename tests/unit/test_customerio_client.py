"""The Customer.io client against the emulator over real HTTP: every answer classified right,
the rate gate consulted before every request, one person's operations kept in order."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from turnout.destinations.base import SendResult, Status
from turnout.destinations.customerio.client import CustomerIOClient
from turnout.destinations.customerio.operations import (
    AnonymousEvent,
    IdentifyPerson,
    Operation,
    PersonEvent,
    PersonRef,
)
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, Fault, run_emulator

ULID_A = "01HWT2D74NS86Z5JATM52C3M7Z"
ULID_B = "01HWT2D74NYS2N3Z6PY1W27JW7"


class RecordingGate:
    """A RequestGate that never waits and remembers what it was told."""

    def __init__(self) -> None:
        self.acquired = 0
        self.slowed: list[float | None] = []

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.acquired += 1
        yield

    def slow_down(self, retry_after: float | None) -> None:
        self.slowed.append(retry_after)


@pytest.fixture(scope="module")
def server() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id="S", api_key="K"), port=0) as emu:
        yield emu


@pytest.fixture
def emu(server: CustomerIOEmulator) -> CustomerIOEmulator:
    server.reset()
    server.configure(site_id="S", api_key="K", region="us")
    return server


def client(
    emu: CustomerIOEmulator, gate: RecordingGate | None = None, **settings: Any
) -> CustomerIOClient:
    values: dict[str, Any] = {"site_id": "S", "api_key": "K", "track_url": emu.url, **settings}
    return CustomerIOClient(CustomerIOSettings(**values), gate or RecordingGate())


def identify(user: str, **attributes: Any) -> IdentifyPerson:
    return IdentifyPerson(
        person=PersonRef.classify(user), attributes=attributes, timestamp=1714566896
    )


def event(user: str, name: str = "Bought", dedupe: str = ULID_A) -> PersonEvent:
    return PersonEvent(
        person=PersonRef.classify(user), name=name, data={"n": 1}, timestamp=1714566896, id=dedupe
    )


async def send(c: CustomerIOClient, ops: list[Operation]) -> list[SendResult]:
    try:
        return await c.send(ops)
    finally:
        await c.aclose()


def statuses(results: list[SendResult]) -> list[Status]:
    return [r.status for r in results]


@pytest.mark.parametrize("api", ["v2", "v1"])
async def test_operations_reach_customerio_and_report_ok(emu: CustomerIOEmulator, api: str) -> None:
    results = await send(client(emu, api=api), [identify("user/1", plan="pro"), event("user/1")])
    assert statuses(results) == [Status.OK, Status.OK]
    person = emu.state.person("user/1")
    assert person is not None and person.attributes["plan"] == "pro"
    assert [a.name for a in person.events("event")] == ["Bought"]
    assert "POST" in results[1].request and "K" not in results[1].request.split()


async def test_resent_event_is_not_duplicated(emu: CustomerIOEmulator) -> None:
    await send(client(emu), [identify("u1"), event("u1")])
    await send(client(emu), [event("u1")])
    person = emu.state.person("u1")
    assert person is not None and len(person.events("event")) == 1


async def test_gate_acquired_before_every_request(emu: CustomerIOEmulator) -> None:
    gate = RecordingGate()
    await send(client(emu, gate, api="v1"), [identify("a"), identify("b"), event("c")])
    assert gate.acquired == 3 == emu.requests.total


async def test_server_error_is_retry(emu: CustomerIOEmulator) -> None:
    emu.faults.fail_next(1, status=503)
    results = await send(client(emu), [identify("u1"), event("u1")])
    assert statuses(results) == [Status.RETRY, Status.RETRY]
    assert "503" in results[0].reason and results[0].response.startswith("503")
    assert statuses(await send(client(emu), [identify("u1")])) == [Status.OK]


async def test_server_error_retry_after_is_honoured(emu: CustomerIOEmulator) -> None:
    emu.faults.fail_next(1, status=503, retry_after=7)
    (result,) = await send(client(emu), [identify("u1")])
    assert result.status is Status.RETRY and result.retry_after == 7


async def test_rate_limited_is_retry_after_and_slows_the_gate(emu: CustomerIOEmulator) -> None:
    gate = RecordingGate()
    emu.faults.throttle_next(1, retry_after=2)
    (result,) = await send(client(emu, gate), [identify("u1")])
    assert (result.status, result.retry_after) == (Status.RETRY, 2)
    assert gate.slowed == [2]


async def test_rejected_credentials_are_auth(emu: CustomerIOEmulator) -> None:
    results = await send(client(emu, api_key="wrong"), [identify("u1"), event("u2")])
    assert statuses(results) == [Status.AUTH, Status.AUTH]
    assert "401" in results[0].reason


async def test_batch_207_fails_only_the_named_items(emu: CustomerIOEmulator) -> None:
    too_long = identify("u1", bio="x" * 1500)  # built directly: mapping would have cut it
    results = await send(client(emu), [identify("u0"), too_long, event("u2")])
    assert statuses(results) == [Status.OK, Status.PERMANENT, Status.OK]
    assert "1000" in results[1].reason
    assert emu.state.person("u0") is not None and emu.state.person("u2") is not None


async def test_v1_validation_error_is_permanent_with_customerio_message(
    emu: CustomerIOEmulator,
) -> None:
    (result,) = await send(client(emu, api="v1"), [identify("u1", bio="x" * 1500)])
    assert result.status is Status.PERMANENT
    assert "cannot be longer than 1000 bytes" in result.reason
    assert result.response.startswith("400")


async def test_whole_batch_400_is_split_so_good_items_still_go(emu: CustomerIOEmulator) -> None:
    emu.faults.fail_next(1, status=400, path_prefix="/api/v2/batch")
    results = await send(client(emu), [identify("u1"), identify("u2"), identify("u3")])
    assert statuses(results) == [Status.OK, Status.OK, Status.OK]
    assert len(emu.requests.matching(path_prefix="/api/v2/batch")) == 3


async def test_timeout_is_retry(emu: CustomerIOEmulator) -> None:
    emu.faults.hang_next(1, seconds=3)
    (result,) = await send(client(emu, request_timeout=0.3), [identify("u1")])
    assert result.status is Status.RETRY and "0.3s" in result.reason


async def test_dropped_connection_is_retry(emu: CustomerIOEmulator) -> None:
    emu.faults.drop_next(1)
    (result,) = await send(client(emu), [identify("u1")])
    assert result.status is Status.RETRY


async def test_unreachable_host_is_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = CustomerIOSettings(site_id="S", api_key="K", track_url=f"http://127.0.0.1:{port}")
    c = CustomerIOClient(settings, RecordingGate())
    (result,) = await send(c, [identify("u1")])
    assert result.status is Status.RETRY and "could not reach" in result.reason


async def test_later_operation_of_same_person_is_held_back_when_earlier_fails(
    emu: CustomerIOEmulator,
) -> None:
    emu.faults.fail_next(1, status=503, path_prefix="/api/v1/customers/u1")
    ops: list[Operation] = [identify("u1"), event("u1"), identify("u2")]
    results = await send(client(emu, api="v1"), ops)
    assert statuses(results) == [Status.RETRY, Status.RETRY, Status.OK]
    assert "not sent" in results[1].reason
    assert not emu.requests.matching(path_prefix="/api/v1/customers/u1/events")


async def test_anonymous_event_then_identify_merges_activity(emu: CustomerIOEmulator) -> None:
    anon = AnonymousEvent(
        anonymous_id="anon-1", kind="page", name="/home", data={}, timestamp=1714566896, id=ULID_B
    )
    results = await send(client(emu), [anon, identify("u1", anonymous_id="anon-1")])
    assert statuses(results) == [Status.OK, Status.OK]
    person = emu.state.person("u1")
    assert person is not None and [a.name for a in person.events("page")] == ["/home"]


async def test_check_accepts_good_credentials(emu: CustomerIOEmulator) -> None:
    c = client(emu)
    result = await c.check()
    await c.aclose()
    assert result.ok and result.warnings == []


async def test_check_warns_when_account_region_differs(emu: CustomerIOEmulator) -> None:
    emu.configure(region="eu")
    c = client(emu, region="us")
    result = await c.check()
    await c.aclose()
    assert result.ok and any('"eu"' in w for w in result.warnings)


async def test_check_reports_rejected_credentials(emu: CustomerIOEmulator) -> None:
    c = client(emu, api_key="wrong")
    result = await c.check()
    await c.aclose()
    assert not result.ok and "401" in result.message


async def test_check_never_repeats_what_a_track_url_address_answered(
    emu: CustomerIOEmulator,
) -> None:
    emu.faults.add(Fault(status=500, count=1, body='{"meta": {"error": "SECRET-PROBE"}}'))
    c = client(emu)
    result = await c.check()
    await c.aclose()
    assert (result.ok, result.message) == (
        False,
        f"{emu.url} answered 500: a server error (what a track_url address answers is not shown)",
    )


def answering(status: int, body: bytes, **settings: Any) -> CustomerIOClient:
    """A client whose every request gets this answer, without leaving the process."""
    transport = httpx.MockTransport(lambda _: httpx.Response(status, content=body))
    values: dict[str, Any] = {"site_id": "S", "api_key": "K", **settings}
    return CustomerIOClient(CustomerIOSettings(**values), RecordingGate(), transport=transport)


async def test_check_repeats_only_a_region_turnout_knows() -> None:
    c = answering(200, b'{"region": "SECRET-PROBE"}', track_url="http://10.0.0.1:8080")
    result = await c.check()
    await c.aclose()
    assert (result.ok, result.message, result.warnings) == (
        True,
        "credentials accepted (region unknown)",
        [],
    )


async def test_check_repeats_customer_io_s_own_error_message() -> None:
    c = answering(500, b'{"meta": {"error": "internal error, try again"}}', region="eu")
    result = await c.check()
    await c.aclose()
    assert (result.ok, result.message) == (
        False,
        "https://track-eu.customer.io answered 500: internal error, try again",
    )
