"""The debugger as a new user meets it, and tracing a person: a real `turnout serve`, the
Customer.io emulator, the dashboard's event stream read over HTTP, and `turnout trace --user`.

Calls are sent, their fates recorded (delivered, filtered, adjusted, dead-lettered, retrying),
Turnout restarted; then the debugger, the person page, the API and the CLI must all show them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import (
    ADMIN_TOKEN,
    API_KEY,
    SITE_ID,
    TurnoutProcess,
    started_url,
    wait_until,
    write_config,
)
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

LONG_NAME = "Completed " + "x" * 110  # 120 bytes: over Customer.io's 100-byte event name limit
BIG_TRAIT = {"k": "y" * 1200}  # an object over the 1,000-byte attribute value limit

# (message, fate, detail) in the order sent. Timestamps are fixed so outputs can be exact.
CALLS: list[tuple[dict[str, Any], str, str]] = [
    (
        {"type": "track", "anonymousId": "anon-ada", "event": "Viewed Pricing"},
        "delivered",
        "",
    ),
    (
        {
            "type": "identify",
            "userId": "ada",
            "anonymousId": "anon-ada",
            "traits": {"email": "ada@example.com"},
        },
        "delivered",
        "",
    ),
    ({"type": "track", "userId": "ada", "event": "Signed Up"}, "delivered", ""),
    (
        {
            "type": "track",
            "userId": "ada",
            "event": "Opted Out",
            "integrations": {"Customer.io": False},
        },
        "filtered",
        'integrations: Customer.io disabled ("Customer.io": false)',
    ),
    (
        {"type": "page", "userId": "ada", "context": {"page": {"url": "https://x.test/pricing"}}},
        "delivered",
        "",
    ),
    (
        {"type": "track", "userId": "ada", "event": LONG_NAME},
        "adjusted",
        "event name cut from 120 to 100 bytes (event name limit 100 bytes)",
    ),
    (
        {"type": "identify", "userId": "ada", "traits": {"big": BIG_TRAIT}},
        "dead_lettered",
        "attribute value limit (1000 bytes): trait 'big' is 1208 bytes of JSON and cannot be cut",
    ),
]
LABELS = [
    "Viewed Pricing",
    "identify · ada@example.com",
    "Signed Up",
    "Opted Out",
    "https://x.test/pricing",
    LONG_NAME,
    "identify",
]
STREAM_DEADLINE = 30.0  # seconds a test reads one stream, at most
RETRYING = {"type": "track", "userId": "cleo", "event": "Upgraded"}  # sent while Customer.io fails


def _stamped(index: int, message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "messageId": f"m-{index}", "timestamp": f"2026-01-05T10:00:0{index}.000Z"}


@dataclass
class Recorded:
    turnout: TurnoutProcess
    emulator: CustomerIOEmulator


def _fate(turnout: TurnoutProcess, message_id: str) -> tuple[str, str] | None:
    answer = turnout.api("GET", f"/messages/{message_id}")
    if answer.status_code != 200 or not answer.json()["deliveries"]:
        return None
    record = answer.json()["deliveries"][0]
    return record["fate"], record["detail"]


def _has_fate(turnout: TurnoutProcess, message_id: str, fate: tuple[str, str]) -> bool:
    return _fate(turnout, message_id) == fate


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Calls with every fate, recorded, then Turnout restarted: what follows reads the record."""
    directory = tmp_path_factory.mktemp("history")
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emulator:
        config = write_config(directory, started_url(emulator))
        turnout = TurnoutProcess(config).start()
        try:
            for index, (message, _, _) in enumerate(CALLS):
                assert turnout.post("/v1/batch", {"batch": [_stamped(index, message)]}).json() == {
                    "success": True
                }
            for index, (_, fate, detail) in enumerate(CALLS):
                wait_until(
                    partial(_has_fate, turnout, f"m-{index}", (fate, detail)),
                    what=f"the fate of m-{index}",
                )
            emulator.faults.fail_for(3600, status=503)
            turnout.post("/v1/batch", {"batch": [_stamped(len(CALLS), RETRYING)]})
            wait_until(
                lambda: (_fate(turnout, f"m-{len(CALLS)}") or ("",))[0] == "retrying",
                what="the retrying fate",
            )
        finally:
            turnout.stop()
        turnout.start()  # a restart: nothing below comes from the old process's memory
        try:
            yield Recorded(turnout, emulator)
        finally:
            turnout.stop()


# -- reading the debugger's stream ----------------------------------------------------------


def signed_in(turnout: TurnoutProcess) -> httpx.Client:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text[:300]
    answer = client.post(
        "/dashboard/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf.group(1)}
    )
    assert answer.status_code == 303
    return client


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events in a streamed response's lines, as (event, data), for at most
    STREAM_DEADLINE seconds (the client's read timeout ends a silent wait sooner)."""
    deadline = time.monotonic() + STREAM_DEADLINE
    kind, data = "", ""
    for line in lines:
        assert time.monotonic() < deadline, "the stream took too long"
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif not line and kind:
            yield kind, json.loads(data)
            kind, data = "", ""


def recorded_part(client: httpx.Client, query: str = "") -> list[tuple[Any, ...]]:
    """What a stream opened now starts with, before its "live" mark, in a comparable shape."""
    shown: list[tuple[Any, ...]] = []
    with client.stream("GET", "/dashboard/debugger/stream" + query) as response:
        assert response.status_code == 200
        for kind, data in events(response.iter_lines()):
            if kind == "live":
                return shown
            shown.append(_shape(kind, data))
    raise AssertionError(f"the stream ended before its live mark: {shown}")


def _shape(kind: str, data: dict[str, Any]) -> tuple[Any, ...]:
    if kind == "received":
        return (kind, data["message"]["messageId"], data["label"])
    if kind == "live":
        return (kind,)
    if kind == "delivery":
        detail = (
            "(503)" if data["fate"] == "retrying" and "503" in data["detail"] else data["detail"]
        )
        return (kind, data["message_id"], data["connection"], data["fate"], detail)
    return (kind, data["source"], data["code"], data["message"])


def _expected(indexes: list[int]) -> list[tuple[Any, ...]]:
    shown: list[tuple[Any, ...]] = []
    for index in indexes:
        if index == len(CALLS):
            shown += [
                ("received", f"m-{index}", "Upgraded"),
                ("delivery", f"m-{index}", "cio", "retrying", "(503)"),
            ]
            continue
        _, fate, detail = CALLS[index]
        shown += [
            ("received", f"m-{index}", LABELS[index]),
            ("delivery", f"m-{index}", "cio", fate, detail),
        ]
    return shown


# -- the debugger -----------------------------------------------------------------------------


def test_opened_after_a_restart_the_debugger_shows_the_recorded_calls_with_their_fates(
    recorded: Recorded,
) -> None:
    client = signed_in(recorded.turnout)
    assert recorded_part(client) == _expected(list(range(len(CALLS) + 1)))


def test_the_debugger_filters_apply_to_the_recorded_calls(recorded: Recorded) -> None:
    client = signed_in(recorded.turnout)
    assert recorded_part(client, "?type=page") == _expected([4])
    # A page without a name is named, and found, by its URL.
    assert recorded_part(client, "?event=pricing") == _expected([0, 4])
    assert recorded_part(client, "?user=cleo") == _expected([len(CALLS)])
    assert recorded_part(client, "?source=web&type=identify") == _expected([1, 6])
    assert recorded_part(client, "?source=elsewhere") == []


def test_a_refused_call_shows_in_the_stream_and_never_breaks_it(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    client = signed_in(turnout)
    with client.stream("GET", "/dashboard/debugger/stream") as already_open:
        lines = already_open.iter_lines()  # a tab open while the refused call arrives
        assert next(lines) == "retry: 2000"  # sent once the stream listens
        first = events(lines)
        batch = [
            {"type": "track", "userId": "rita", "event": "Kept", "messageId": "r-1"},
            {"type": "track", "userId": "rita", "messageId": "r-2"},  # no event: refused
        ]
        answer = turnout.post("/v1/batch", {"batch": batch}).json()
        assert [r["index"] for r in answer["rejected"]] == [1]
        refused = ("rejected", "web", "missing_event", "batch[1].event: required for track")
        seen = [_shape(k, d) for k, d in _until(first, "rejected") if k in ("received", "rejected")]
        assert seen == [("received", "r-1", "Kept"), refused]
        wait_until(lambda: _fate(turnout, "r-1") == ("delivered", ""), what="r-1 delivered")

        # Another tab opened (or this one reconnecting) starts with both, then goes on live.
        with client.stream("GET", "/dashboard/debugger/stream") as opened_later:
            later = events(opened_later.iter_lines())
            assert [_shape(k, d) for k, d in _until(later, "live")][:-1] == [
                ("received", "r-1", "Kept"),
                ("delivery", "r-1", "cio", "delivered", ""),
                refused,
            ]
            turnout.post("/v1/track", {"userId": "rita", "event": "Later", "messageId": "r-3"})
            arrived = [_shape(k, d) for k, d in _until(later, "received", "r-3")]
            assert arrived[-1] == ("received", "r-3", "Later")


def _until(
    stream: Iterator[tuple[str, dict[str, Any]]], kind: str, message_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Events up to and including the first of `kind` (for `message_id`, if given)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    for event, data in stream:
        seen.append((event, data))
        found = message_id is None or (data.get("message") or {}).get("messageId") == message_id
        if event == kind and found:
            return seen
    raise AssertionError(f"the stream ended before a {kind} event: {seen}")


# -- a person -------------------------------------------------------------------------------


def trace(turnout: TurnoutProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", "trace", *args, "--config", str(turnout.config)],
        capture_output=True,
        text=True,
        env=turnout.env,
        timeout=60,
    )


ADA = f"""6 call(s) with userId ada, oldest first:
2026-01-05T10:00:01.000Z  web  identify  identify · ada@example.com  (messageId m-1)
  cio: delivered
2026-01-05T10:00:02.000Z  web  track  Signed Up  (messageId m-2)
  cio: delivered
2026-01-05T10:00:03.000Z  web  track  Opted Out  (messageId m-3)
  cio: filtered: integrations: Customer.io disabled ("Customer.io": false)
2026-01-05T10:00:04.000Z  web  page  https://x.test/pricing  (messageId m-4)
  cio: delivered
2026-01-05T10:00:05.000Z  web  track  {LONG_NAME}  (messageId m-5)
  cio: adjusted: event name cut from 120 to 100 bytes (event name limit 100 bytes)
2026-01-05T10:00:06.000Z  web  identify  identify  (messageId m-6)
  cio: dead_lettered: attribute value limit (1000 bytes): trait 'big' is 1208 bytes of JSON and \
cannot be cut
"""


def test_trace_user_prints_every_call_of_the_person_with_each_fate_in_order(
    recorded: Recorded,
) -> None:
    result = trace(recorded.turnout, "--user", "ada")
    assert (result.returncode, result.stdout, result.stderr) == (0, ADA, "")


def test_trace_user_pages_through_a_long_history(recorded: Recorded) -> None:
    first = trace(recorded.turnout, "--user", "ada", "--limit", "2")
    offset = first.stdout.rsplit(" ", 1)[-1].strip()
    assert first.stdout == (
        "2 call(s) with userId ada, oldest first:\n"
        + "".join(ADA.splitlines(keepends=True)[1:5])
        + f"more calls follow: turnout trace --user ada --after {offset}\n"
    )
    rest = trace(recorded.turnout, "--user", "ada", "--after", offset)
    assert rest.stdout == "4 call(s) with userId ada, oldest first:\n" + "".join(
        ADA.splitlines(keepends=True)[5:]
    )


def test_trace_anonymous_id_prints_the_calls_made_before_identifying(recorded: Recorded) -> None:
    result = trace(recorded.turnout, "--anonymous-id", "anon-ada")
    assert result.stdout == (
        "1 call(s) with anonymousId anon-ada, oldest first:\n"
        "2026-01-05T10:00:00.000Z  web  track  Viewed Pricing  (messageId m-0)\n"
        "  cio: delivered\n"
    )


def test_trace_refuses_two_look_ups_at_once_and_says_when_nothing_is_kept(
    recorded: Recorded,
) -> None:
    both = trace(recorded.turnout, "m-1", "--user", "ada")
    assert (both.returncode, both.stdout) == (2, "")
    assert "error: give one of MESSAGE_ID, --user ID or --anonymous-id ID" in both.stderr
    nobody = trace(recorded.turnout, "--user", "nobody")
    assert (nobody.returncode, nobody.stdout) == (1, "no call with userId nobody is kept\n")


def test_trace_writes_the_calls_as_fixtures_that_playbook_test_runs(
    recorded: Recorded, tmp_path: Path
) -> None:
    kept = tmp_path / "fixtures"
    result = trace(recorded.turnout, "--user", "ada", "--fixtures", str(kept))
    assert result.returncode == 0
    assert result.stdout == ADA + f"wrote 6 fixture(s) to {kept}\n"
    calls = recorded.turnout.api("GET", "/people", params={"user_id": "ada"}).json()["calls"]
    assert sorted(p.name for p in kept.iterdir()) == [f"m-{i}.json" for i in range(1, 7)]
    for call in calls:
        written = (kept / f"{call['message_id']}.json").read_text()
        assert written == json.dumps(call["message"], indent=2, sort_keys=True) + "\n"
    tested = subprocess.run(
        [sys.executable, "-m", "turnout", "playbook", "test", "cio", "--fixtures", str(kept),
         "--config", str(recorded.turnout.config)],
        capture_output=True, text=True, env=recorded.turnout.env, timeout=60,
    )  # fmt: skip
    assert (tested.returncode, tested.stdout.splitlines()[-1]) == (0, "6 fixture(s) run")
    both = trace(recorded.turnout, "m-1", "--fixtures", str(kept))
    assert (both.returncode, both.stderr) == (
        2, "error: --fixtures goes with --user or --anonymous-id\n"
    )  # fmt: skip


def test_the_api_and_the_person_page_show_the_same_calls(recorded: Recorded) -> None:
    answer = recorded.turnout.api("GET", "/people", params={"user_id": "ada", "limit": 3})
    assert answer.status_code == 200
    body = answer.json()
    assert [c["message_id"] for c in body["calls"]] == ["m-1", "m-2", "m-3"]
    assert [[(d["connection"], d["fate"]) for d in c["deliveries"]] for c in body["calls"]] == [
        [("cio", "delivered")],
        [("cio", "delivered")],
        [("cio", "filtered")],
    ]
    assert body["more_after"] == body["calls"][-1]["offset"]
    neither = recorded.turnout.api("GET", "/people")
    assert neither.status_code == 422
    assert neither.json()["field"] == "user_id"

    page = signed_in(recorded.turnout).get(
        "/dashboard/people", params={"by": "userId", "id": "ada"}
    )
    assert page.status_code == 200
    rows = re.findall(r'<tr data-message-id="([^"]+)">', page.text)
    assert rows == ["m-1", "m-2", "m-3", "m-4", "m-5", "m-6"]
    assert "https://x.test/pricing</a>" in page.text
    assert "Customer.io disabled (&#34;Customer.io&#34;: false)" in page.text
