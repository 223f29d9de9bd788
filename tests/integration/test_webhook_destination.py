"""The webhook destination through a real `turnout serve`: a `[[connections]] destination =
"webhook"` in the configuration file (or one created through the management API) and a real
HTTP receiver that verifies every signature with the `standardwebhooks` library, as a user's
receiver would, and answers what each test tells it to."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from support import ADMIN_TOKEN, WRITE_KEY, TurnoutProcess, free_port, wait_until

SECRET = "whsec_" + base64.b64encode(b"turnout-webhook-test-key-32bytes").decode()
TOKEN = "Bearer hook-token-0123456789-SECRET"  # a header value: secret, never shown


@dataclass
class Arrival:
    """One request as the receiver saw it."""

    at: float  # the receiver's monotonic clock
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def message(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


class Receiver:
    """A webhook receiver on a real socket: verifies, records, answers by a per-message script."""

    def __init__(self) -> None:
        self.verifier = Webhook(SECRET)
        self.arrivals: list[Arrival] = []
        # messageId -> answers (status, headers, body) for its next requests; then 200.
        self.script: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, text = receiver.answer(self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            self.verifier.verify(body, headers)
            verified = headers.get("authorization") == TOKEN
        except WebhookVerificationError:
            verified = False
        extra: dict[str, str] = {}
        with self.lock:
            status, text = 200, b"ok"
            if not verified:
                status, text = 401, b"signature or token not accepted"
            else:
                planned = self.script.get(json.loads(body).get("messageId", ""))
                if planned:
                    status, extra, text = planned.pop(0)
            self.arrivals.append(Arrival(time.monotonic(), path, headers, body, verified, status))
        return status, extra, text

    def delivered(self, person: str) -> list[Arrival]:
        """The requests about `person` that were answered 2xx, in arrival order."""
        with self.lock:
            return [
                a for a in self.arrivals if a.answered == 200 and a.message.get("userId") == person
            ]

    def about(self, message_id: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.message.get("messageId") == message_id]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_file(directory: Path, connection: str) -> Path:
    path = directory / "turnout.toml"
    path.write_text(
        f"""
[server]
listen = "127.0.0.1:{free_port()}"
data_dir = "{directory / "data"}"
admin_token = "{ADMIN_TOKEN}"

[log]
sync = "normal"

[delivery]
linger_ms = 5

[[sources]]
name = "web"
write_key = "{WRITE_KEY}"
{connection}
"""
    )
    return path


def webhook_connection(receiver: Receiver) -> str:
    """The connection a user writes: secrets from the environment, a header table."""
    return f"""
[[connections]]
name = "hook"
destination = "webhook"
sources = ["web"]

[connections.settings]
url = "{receiver.url}/in"
signing_secret = "env:HOOK_SECRET"

[connections.settings.headers]
Authorization = "env:HOOK_TOKEN"
X-Team = "growth"
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def hook(tmp_path: Path, receiver: Receiver) -> Iterator[TurnoutProcess]:
    env = {"HOOK_SECRET": SECRET, "HOOK_TOKEN": TOKEN}
    with TurnoutProcess(config_file(tmp_path, webhook_connection(receiver)), env) as process:
        yield process
    assert SECRET not in process.output.read_text() and TOKEN not in process.output.read_text()


def delivery_id(message_id: str) -> str:
    """The webhook-id a message's request must carry, computed here independently."""
    return "msg_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def track(turnout: TurnoutProcess, person: str, message_id: str, n: int = 0) -> None:
    call = {"userId": person, "event": "Step", "messageId": message_id, "properties": {"n": n}}
    assert turnout.post("/v1/track", call).status_code == 200


def test_calls_arrive_signed_as_stored_and_in_order_per_person(
    hook: TurnoutProcess, receiver: Receiver
) -> None:
    # One of p1's calls fails twice first: p1's later calls must wait for it, others flow on.
    receiver.script["p1-2"] = [(503, {}, b"busy"), (500, {}, b"oops")]
    batch = [
        {
            "type": "track",
            "userId": f"p{i % 3}",
            "event": "Step",
            "messageId": f"p{i % 3}-{i // 3}",
            "properties": {"n": i // 3},
        }
        for i in range(24)
    ]
    assert hook.post("/v1/batch", {"batch": batch}).status_code == 200
    for person in ("p0", "p1", "p2"):

        def eight(p: str = person) -> list[Arrival] | None:
            found = receiver.delivered(p)
            return found if len(found) == 8 else None

        arrivals = wait_until(eight, timeout=30, what=f"eight calls of {person}")
        assert [a.message["properties"]["n"] for a in arrivals] == list(range(8))
    assert all(a.verified for a in receiver.arrivals)
    assert [a.answered for a in receiver.about("p1-2")] == [503, 500, 200]

    first = receiver.delivered("p0")[0]
    assert first.path == "/in"
    assert first.headers["webhook-id"] == delivery_id("p0-0")
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-team"] == "growth"
    stored = first.message
    assert (stored["type"], stored["event"], stored["userId"]) == ("track", "Step", "p0")
    assert stored["properties"] == {"n": 0} and stored["messageId"] == "p0-0"
    assert {"receivedAt", "timestamp"} <= set(stored)
    # Re-sends of one message carry the same id; each attempt is signed with its own time.
    assert {a.headers["webhook-id"] for a in receiver.about("p1-2")} == {delivery_id("p1-2")}

    shown = hook.api("GET", "/connections").json()[0]
    assert shown["destination"] == "webhook"
    assert shown["settings"]["headers"] == {"Authorization": "Be••••••••ET", "X-Team": "••••••••"}
    assert shown["settings"]["signing_secret"] == SECRET[:2] + "••••••••" + SECRET[-2:]
    at_rest = b"".join(p.read_bytes() for p in (hook.config.parent / "data").glob("store.db*"))
    assert TOKEN.encode() not in at_rest and SECRET.encode() not in at_rest


def test_a_server_error_is_retried_until_accepted(hook: TurnoutProcess, receiver: Receiver) -> None:
    receiver.script["retry-me"] = [(500, {}, b"down")]
    track(hook, "r1", "retry-me")
    wait_until(lambda: len(receiver.delivered("r1")) == 1, what="the retried call accepted")
    assert [a.answered for a in receiver.about("retry-me")] == [500, 200]
    trace = wait_until(
        lambda: (
            (found := hook.api("GET", "/messages/retry-me").json()).get("deliveries")
            and found["deliveries"][0]["fate"] == "delivered"
            and found
        ),
        what="the delivered record",
    )
    assert trace["deliveries"][0]["attempts"] == 2


def test_a_429_delays_the_next_attempt_by_its_retry_after(
    hook: TurnoutProcess, receiver: Receiver
) -> None:
    receiver.script["slow-down"] = [(429, {"Retry-After": "1"}, b"too many")]
    track(hook, "s1", "slow-down")
    wait_until(lambda: len(receiver.delivered("s1")) == 1, what="the call accepted after 429")
    refused, accepted = receiver.about("slow-down")
    assert (refused.answered, accepted.answered) == (429, 200)
    assert accepted.at - refused.at >= 1.0


def test_a_400_is_dead_lettered_and_the_next_call_still_flows(
    hook: TurnoutProcess, receiver: Receiver
) -> None:
    receiver.script["bad-one"] = [(400, {}, b'{"error": "unknown event"}')]
    track(hook, "d1", "bad-one", 1)
    track(hook, "d1", "good-one", 2)
    wait_until(lambda: len(receiver.delivered("d1")) == 1, what="the next call delivered")
    assert receiver.delivered("d1")[0].message["messageId"] == "good-one"
    (letter,) = wait_until(
        lambda: hook.api("GET", "/dead-letters", params={"connection": "hook"}).json(),
        what="the dead letter",
    )
    assert letter["message_id"] == "bad-one"
    assert letter["reason"] == f'{receiver.host} rejected it (400): {{"error": "unknown event"}}'
    assert letter["response"] == '400\n{"error": "unknown event"}'
    sent = f"POST {receiver.url}/in (webhook-id {delivery_id('bad-one')}) "
    assert letter["request"].startswith(sent)
    assert json.loads(letter["request"][len(sent) :])["messageId"] == "bad-one"
    assert [a.answered for a in receiver.about("bad-one")] == [400]


def test_a_redirect_is_dead_lettered_not_followed(hook: TurnoutProcess, receiver: Receiver) -> None:
    elsewhere = f"{receiver.url}/elsewhere"
    receiver.script["moved"] = [(302, {"Location": elsewhere}, b"")]
    track(hook, "m1", "moved")
    (letter,) = wait_until(
        lambda: hook.api("GET", "/dead-letters", params={"connection": "hook"}).json(),
        what="the dead letter",
    )
    assert letter["reason"] == (
        f"{receiver.host} redirected (302) to {elsewhere}: redirects are not followed;"
        " set the connection's address to the final one"
    )
    track(hook, "m1", "after-move")
    wait_until(lambda: len(receiver.delivered("m1")) == 1, what="the next call delivered")
    assert [a.path for a in receiver.arrivals] == ["/in", "/in"]


def test_a_connection_created_through_the_api_delivers(tmp_path: Path, receiver: Receiver) -> None:
    with TurnoutProcess(config_file(tmp_path, "")) as turnout:
        created = turnout.api(
            "POST",
            "/connections",
            json={
                "name": "hook-api",
                "destination": "webhook",
                "sources": ["web"],
                "settings": {
                    "url": f"{receiver.url}/in",
                    "headers": {"Authorization": TOKEN},
                    "signing_secret": SECRET,
                },
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["settings"]["headers"] == {"Authorization": "Be••••••••ET"}
        assert SECRET not in created.text
        track(turnout, "a1", "via-api")
        (arrival,) = wait_until(lambda: receiver.delivered("a1"), what="the call delivered")
        assert arrival.verified and arrival.headers["webhook-id"] == delivery_id("via-api")

        # An edit that sends the masked header back keeps the stored value.
        edited = turnout.api(
            "PATCH",
            "/connections/hook-api",
            json={
                "settings": {
                    "url": f"{receiver.url}/in",
                    "headers": {"Authorization": "Be••••••••ET"},
                    "signing_secret": "",
                    "batch_size": 2,
                }
            },
        )
        assert edited.status_code == 200, edited.text
        track(turnout, "a2", "after-edit")
        (batch,) = wait_until(
            lambda: [a for a in receiver.arrivals if "batch" in a.message],
            what="a batch request",
        )
        assert batch.verified and batch.answered == 200
        assert [m["messageId"] for m in batch.message["batch"]] == ["after-edit"]

        invalid = turnout.api(
            "POST",
            "/connections",
            json={
                "name": "hook-bad",
                "destination": "webhook",
                "settings": {"url": "ftp://example.com/", "signing_secret": "whsec_short"},
            },
        )
        assert invalid.status_code == 422
        assert invalid.json()["message"] == (
            "url: must start with http:// or https:// and name a host, got 'ftp://example.com/'"
        )
    assert TOKEN not in turnout.output.read_text()
