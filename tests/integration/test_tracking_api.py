"""The tracking API against a running Turnout: bad input never costs good input, nor the server.

Every hostile body gets a precise answer quickly, the server stays healthy, and the good
messages sent alongside (in the same batch or concurrently) reach Customer.io.
"""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from support import WRITE_KEY, TurnoutProcess, basic, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator

AUTH = basic(WRITE_KEY)


def deep(levels: int) -> bytes:
    return (
        b'{"type":"track","userId":"u","event":"E","properties":{"a":'
        + b"[" * levels
        + b"]" * levels
        + b"}}"
    )


HOSTILE: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("invalid JSON", "/v1/track", b'{"userId": "u", "event": ', {}, 400, "invalid_json"),
    (
        "invalid UTF-8",
        "/v1/track",
        b'{"userId": "\xc3\x28", "event": "E"}',
        {},
        400,
        "invalid_utf8",
    ),
    ("a JSON array", "/v1/identify", b'[{"userId": "u"}]', {}, 400, "invalid_field"),
    ("a JSON string", "/v1/batch", b'"batch"', {}, 400, "invalid_field"),
    ("10,000 levels", "/v1/track", deep(10_000), {}, 400, "too_deep"),
    (
        "10,000 levels, gzip",
        "/v1/t",
        gzip.compress(deep(10_000)),
        {"Content-Encoding": "gzip"},
        400,
        "too_deep",
    ),
    (
        "100,000 keys",
        "/v1/track",
        json.dumps(
            {"userId": "u", "event": "E", "properties": {f"k{i}": i for i in range(100_000)}}
        ).encode(),
        {},
        413,
        "request_too_large",
    ),
    (
        "100,000 keys, gzip",
        "/v1/batch",
        gzip.compress(
            json.dumps(
                {
                    "batch": [
                        {
                            "type": "identify",
                            "userId": "u",
                            "traits": {f"k{i}": 1 for i in range(100_000)},
                        }
                    ]
                }
            ).encode()
        ),
        {"Content-Encoding": "gzip"},
        413,
        "request_too_large",
    ),
    (
        "a 10 MB string",
        "/v1/track",
        b'{"userId":"u","event":"' + b"x" * 10_000_000 + b'"}',
        {},
        413,
        "request_too_large",
    ),
    (
        "a 40 KB message",
        "/v1/track",
        json.dumps({"userId": "u", "event": "E", "properties": {"s": "x" * 40_000}}).encode(),
        {},
        413,
        "message_too_large",
    ),
    (
        "wrong type",
        "/v1/track",
        b'{"userId": "u", "event": {"name": "E"}}',
        {},
        400,
        "invalid_field",
    ),
    ("no identity", "/v1/page", b'{"name": "Home"}', {}, 400, "no_user_anon_id"),
    (
        "unknown type",
        "/v1/batch",
        b'{"batch": [{"type": "purchase", "userId": "u"}]}',
        {},
        400,
        "invalid_type",
    ),
    ("empty batch", "/v1/batch", b'{"batch": []}', {}, 400, "empty_batch"),
    (
        "bad gzip",
        "/v1/track",
        b"\x1f\x8b not really",
        {"Content-Encoding": "gzip"},
        400,
        "invalid_gzip",
    ),
]


def send(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(url + path, content=body, headers={**AUTH, **headers}, timeout=30)
    return response, time.monotonic() - started


def test_hostile_bodies_get_precise_errors_while_good_messages_flow(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    good = [json.dumps({"userId": "steady", "event": f"good {i}"}).encode() for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        hostile = [pool.submit(send, turnout.url, p, b, h) for _, p, b, h, _, _ in HOSTILE]
        steady = [pool.submit(send, turnout.url, "/v1/track", b, {}) for b in good]
        for (what, _, _, _, status, code), future in zip(HOSTILE, hostile, strict=True):
            response, took = future.result()
            assert (response.status_code, response.json()["code"]) == (status, code), what
            assert response.json()["message"], what
            assert took < 10, f"{what} took {took:.1f} s"
        for future in steady:
            response, took = future.result()
            assert response.status_code == 200
    assert httpx.get(turnout.url + "/health").status_code == 200
    wait_until(
        lambda: (p := emulator.state.person("steady")) and len(p.activity) == 20,
        what="the twenty good events",
    )


def test_good_messages_in_a_batch_full_of_bad_ones_are_delivered_and_rejects_recorded(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    bad: list[Any] = [
        {"type": "track", "event": "no identity"},
        {"type": "purchase", "userId": "batchy"},
        {"type": "track", "userId": "batchy", "event": ["not", "a", "string"]},
        {"type": "track", "userId": "batchy", "event": "big", "properties": {"s": "x" * 40_000}},
        {"type": "identify", "userId": "batchy", "traits": "not an object"},
        "not even an object",
    ]
    good = [
        {"type": "identify", "userId": "batchy", "traits": {"email": "b@example.com"}},
        {"type": "track", "userId": "batchy", "event": "Kept"},
    ]
    body = json.dumps({"batch": [bad[0], good[0], *bad[1:4], good[1], *bad[4:]]}).encode()
    deep_item = deep(10_000).replace(b'"userId":"u"', b'"userId":"batchy"')
    body = body[:-2] + b"," + deep_item + b"]}"  # one item nested 10,000 deep, at the end
    response = httpx.post(turnout.url + "/v1/batch", content=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [r["code"] for r in answer["rejected"]] == [
        "no_user_anon_id",
        "invalid_type",
        "invalid_field",
        "message_too_large",
        "invalid_field",
        "invalid_field",
        "too_deep",
    ]
    person = wait_until(
        lambda: (p := emulator.state.person("batchy")) and p.activity and p,
        what="the good messages of the batch",
    )
    assert person.email == "b@example.com"
    assert [a.name for a in person.activity] == ["Kept"]
    rejects = turnout.api("GET", "/rejects").json()
    assert {r["code"] for r in rejects} >= {"no_user_anon_id", "too_deep", "message_too_large"}


def test_a_full_log_sheds_load_with_503_and_retry_after_never_a_silent_drop(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator))
    with TurnoutProcess(config, env={"TURNOUT_LOG_MAX_BACKLOG": "3"}) as process:
        answers = [process.post("/v1/track", {"userId": "u", "event": f"e{i}"}) for i in range(6)]
        statuses = [a.status_code for a in answers]
        assert statuses[:3] == [200, 200, 200]
        assert 503 in statuses
        shed = next(a for a in answers if a.status_code == 503)
        assert shed.headers["Retry-After"]
        assert shed.json()["code"] == "overloaded" and "bound" in shed.json()["message"]


def _data_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("log.db*"))


def test_a_batch_envelope_cannot_make_one_request_store_hundreds_of_megabytes(
    turnout: TurnoutProcess, tmp_path: Path
) -> None:
    """A 400 KB `context` beside 250 tiny items once stored 187 MB from a 413 KB request."""
    items = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(250)]
    before = _data_bytes(tmp_path / "data")
    for pad in (400_000, 20_000):
        answer = turnout.post("/v1/batch", {"batch": items, "context": {"pad": "x" * pad}})
        assert answer.status_code == 413
        assert answer.json()["code"] == "envelope_too_large"
    good = turnout.post("/v1/batch", {"batch": items[:3], "context": {"library": {"name": "go"}}})
    assert good.status_code == 200
    assert _data_bytes(tmp_path / "data") - before < 1024 * 1024
