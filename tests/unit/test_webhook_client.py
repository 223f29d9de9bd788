"""The webhook client: what goes on the wire (body, headers, signature) and what each answer
means, checked against requests captured at httpx's transport and a signature computed here."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import msgspec
import pytest

from turnout.destinations.base import SendResult, Status
from turnout.destinations.webhook import client as webhook_client
from turnout.destinations.webhook.client import WebhookClient
from turnout.destinations.webhook.mapping import WebhookCall, map_message
from turnout.destinations.webhook.settings import WebhookSettings
from turnout.spec import message as spec_message
from turnout.spec.message import Message

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
URL = "https://hooks.example.com/in?token=t0ken"


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


Answer = Callable[[httpx.Request], httpx.Response]


class Wire:
    """Captures every request the client makes and answers with `answer`."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, text="ok"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def client(wire: Wire, gate: RecordingGate | None = None, **settings: Any) -> WebhookClient:
    parsed = msgspec.convert({"url": URL, **settings}, WebhookSettings)
    return WebhookClient(parsed, gate or RecordingGate(), transport=httpx.MockTransport(wire))


def call(message_id: str, person: str = "u-1", **fields: Any) -> WebhookCall:
    message = Message(
        type="track",
        message_id=message_id,
        received_at="2026-11-28T10:00:00.000Z",
        timestamp="2026-11-28T10:00:00.000Z",
        user_id=person,
        event="Signed Up",
        properties={"plan": "pro", "seats": 3},
        **fields,
    )
    (operation,) = map_message(message, msgspec.convert({"url": URL}, WebhookSettings)).operations
    assert isinstance(operation, WebhookCall)
    return operation


def expected_signature(delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()


async def test_one_call_is_posted_as_stored_and_signed() -> None:
    wire = Wire()
    hook = client(wire, signing_secret=SECRET, headers={"Authorization": "Bearer abc"})
    operation = call("m-1")
    before = int(time.time())
    (result,) = await hook.send([operation])
    after = int(time.time())
    await hook.aclose()

    (request,) = wire.requests
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.content == spec_message.encode(operation.message)
    assert json.loads(request.content)["properties"] == {"plan": "pro", "seats": 3}
    delivery_id = "msg_" + hashlib.sha256(b"m-1").hexdigest()[:32]
    assert request.headers["webhook-id"] == delivery_id
    timestamp = request.headers["webhook-timestamp"]
    assert before <= int(timestamp) <= after
    assert request.headers["webhook-signature"] == expected_signature(
        delivery_id, timestamp, request.content
    )
    assert request.headers["authorization"] == "Bearer abc"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Turnout (webhook destination)"

    assert result.status is Status.OK and result.response == "200\nok"
    sent = f"POST https://hooks.example.com/in (webhook-id {delivery_id}) "
    assert result.request == sent + request.content.decode()
    assert "t0ken" not in result.request and "Bearer" not in result.request


async def test_a_resent_call_carries_the_same_id_and_a_fresh_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wire = Wire()
    hook = client(wire, signing_secret=SECRET)
    clock = iter([1_800_000_000.0, 1_800_000_060.0])
    monkeypatch.setattr(webhook_client, "time", SimpleNamespace(time=lambda: next(clock)))
    await hook.send([call("m-1")])
    await hook.send([call("m-1")])
    first, again = wire.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert (first.headers["webhook-timestamp"], again.headers["webhook-timestamp"]) == (
        "1800000000",
        "1800000060",
    )
    assert again.headers["webhook-signature"] == expected_signature(
        again.headers["webhook-id"], "1800000060", again.content
    )
    assert first.headers["webhook-signature"] != again.headers["webhook-signature"]


async def test_without_a_secret_requests_carry_an_id_and_no_signature() -> None:
    wire = Wire()
    await client(wire, headers={"user-agent": "Receiver-Friendly/1"}).send([call("m-1")])
    (request,) = wire.requests
    assert request.headers.get_list("user-agent") == ["Receiver-Friendly/1"]
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == "msg_" + hashlib.sha256(b"m-1").hexdigest()[:32]


async def test_a_batch_is_one_request_with_the_messages_in_order() -> None:
    wire = Wire()
    hook = client(wire, signing_secret=SECRET, batch_size=3)
    calls = [call(f"m-{i}", person=f"u-{i}") for i in range(5)]
    results = await hook.send(calls)
    assert [r.status for r in results] == [Status.OK] * 5
    first, second = wire.requests
    assert first.content == (
        b'{"batch":[' + b",".join(spec_message.encode(c.message) for c in calls[:3]) + b"]}"
    )
    assert [m["messageId"] for m in json.loads(second.content)["batch"]] == ["m-3", "m-4"]
    for request in wire.requests:
        assert request.headers["webhook-signature"] == expected_signature(
            request.headers["webhook-id"], request.headers["webhook-timestamp"], request.content
        )
    ids = {r.headers["webhook-id"] for r in wire.requests}
    assert len(ids) == 2 and all(i.startswith("msg_") for i in ids)
    assert results[1].request.startswith(
        f"POST https://hooks.example.com/in (one item of 3, webhook-id"
        f" {first.headers['webhook-id']}) "
    )

    # The same batch again: the same id. A batch of one differs from the call sent alone.
    await hook.send(calls[:3])
    assert wire.requests[-1].headers["webhook-id"] == first.headers["webhook-id"]
    await hook.send(calls[:1])
    alone = "msg_" + hashlib.sha256(b"m-0").hexdigest()[:32]
    assert wire.requests[-1].headers["webhook-id"] != alone
    assert json.loads(wire.requests[-1].content) == {
        "batch": [json.loads(spec_message.encode(calls[0].message))]
    }


async def test_a_refused_batch_is_split_until_the_bad_message_is_alone() -> None:
    def refuse_bad(request: httpx.Request) -> httpx.Response:
        if b'"bad"' in request.content:
            return httpx.Response(400, text="bad event")
        return httpx.Response(200)

    wire = Wire(refuse_bad)
    gate = RecordingGate()
    hook = client(wire, gate, batch_size=4)
    calls = [call(name, person=f"u-{name}") for name in ("a", "bad", "c", "d")]
    results = await hook.send(calls)
    assert [r.status for r in results] == [Status.OK, Status.PERMANENT, Status.OK, Status.OK]
    assert results[1].reason == "hooks.example.com rejected it (400): bad event"
    sizes = [len(json.loads(r.content)["batch"]) for r in wire.requests]
    assert sizes == [4, 2, 1, 1, 2]
    assert gate.acquired == 5


async def test_a_redirect_is_not_followed() -> None:
    wire = Wire(lambda r: httpx.Response(307, headers={"Location": "https://elsewhere.test/"}))
    (result,) = await client(wire, signing_secret=SECRET).send([call("m-1")])
    assert len(wire.requests) == 1
    assert result.status is Status.PERMANENT
    assert result.reason == (
        "hooks.example.com redirected (307) to https://elsewhere.test/: redirects are not"
        " followed; set the connection's address to the final one"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Status.OK),
        (202, Status.OK),
        (204, Status.OK),
        (301, Status.PERMANENT),
        (308, Status.PERMANENT),
        (400, Status.PERMANENT),
        (404, Status.PERMANENT),
        (409, Status.PERMANENT),
        (413, Status.PERMANENT),
        (422, Status.PERMANENT),
        (401, Status.AUTH),
        (403, Status.AUTH),
        (408, Status.RETRY),
        (429, Status.RETRY),
        (500, Status.RETRY),
        (502, Status.RETRY),
        (503, Status.RETRY),
        (504, Status.RETRY),
    ],
)
async def test_each_status_is_classified(status: int, expected: Status) -> None:
    wire = Wire(lambda r: httpx.Response(status, headers={"Retry-After": "7"}))
    gate = RecordingGate()
    (result,) = await client(wire, gate).send([call("m-1")])
    assert result.status is expected
    assert result.retry_after == (7.0 if expected is Status.RETRY else None)
    assert gate.acquired == 1
    assert gate.slowed == ([7.0] if status == 429 else [])


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            httpx.ConnectError("refused"),
            "could not reach hooks.example.com (ConnectError: refused)",
        ),
        (httpx.ReadTimeout("slow"), "no answer from hooks.example.com within 2s"),
    ],
)
async def test_no_answer_is_retried(error: httpx.HTTPError, reason: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    (result,) = await client(Wire(fail), request_timeout=2).send([call("m-1")])
    assert result.status is Status.RETRY
    assert result.reason == reason + "; will retry"
    assert result.request.startswith("POST https://hooks.example.com/in (webhook-id msg_")


async def test_check_reports_reachable_redirected_and_unreachable() -> None:
    wire = Wire(lambda r: httpx.Response(405))
    result = await client(wire, headers={"Authorization": "Bearer abc"}).check()
    assert (result.ok, result.message, result.warnings) == (
        True,
        "https://hooks.example.com/in is reachable (answered 405)",
        [],
    )
    (request,) = wire.requests
    assert request.method == "HEAD" and request.headers["authorization"] == "Bearer abc"

    unimplemented = await client(Wire(lambda r: httpx.Response(501))).check()
    assert unimplemented.ok  # a server without HEAD still answers: the address is right
    failing = await client(Wire(lambda r: httpx.Response(503))).check()
    assert (failing.ok, failing.message) == (
        False,
        "https://hooks.example.com/in answered 503: the receiver is failing",
    )

    refused = await client(Wire(lambda r: httpx.Response(401))).check()
    assert refused.ok and len(refused.warnings) == 1 and "(401)" in refused.warnings[0]

    moved = Wire(lambda r: httpx.Response(301, headers={"Location": "https://x.test/"}))
    result = await client(moved).check()
    assert (result.ok, result.message) == (
        False,
        "https://hooks.example.com/in redirects (301) to https://x.test/: redirects are not"
        " followed; set url to the final address",
    )

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    result = await client(Wire(down)).check()
    assert (result.ok, result.message) == (
        False,
        "could not reach hooks.example.com (ConnectError: refused)",
    )


async def test_one_result_per_operation_whatever_the_batching() -> None:
    wire = Wire()
    results: list[SendResult] = await client(wire, batch_size=2).send(
        [call(f"m-{i}", person=f"u-{i}") for i in range(7)]
    )
    assert len(results) == 7 and len(wire.requests) == 4
