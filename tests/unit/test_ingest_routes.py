"""What the tracking API answers, and what reaches the log, for each way a client may call it."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from ingest_harness import OTHER_KEY, WRITE_KEY, basic, tracking

from turnout.ingest.accept import Limits

SHORT_FORMS = {
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
MINIMAL: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u-1", "traits": {"email": "a@example.com"}},
    "track": {"userId": "u-1", "event": "Signed Up"},
    "page": {"anonymousId": "anon-1", "name": "Home"},
    "screen": {"userId": "u-1", "name": "Settings"},
    "group": {"userId": "u-1", "groupId": "g-1"},
    "alias": {"userId": "u-1", "previousId": "anon-1"},
}


@pytest.mark.parametrize("kind", list(MINIMAL))
def test_each_call_type_is_committed_on_its_long_and_short_route(kind: str) -> None:
    with tracking() as api:
        long = api.post(f"/{kind}", MINIMAL[kind])
        short = api.post(f"/{kind[0]}", MINIMAL[kind])
        assert (long.status_code, long.json()) == (200, {"success": True})
        assert (short.status_code, short.json()) == (200, {"success": True})
        assert [m.type for m in api.log.messages] == [kind, kind]
        assert all(m.source == "web" for m in api.log.messages)


def test_route_decides_the_type_whatever_the_body_says() -> None:
    with tracking() as api:
        api.post("/t", {"type": "identify", "userId": "u", "event": "E"})
        assert api.log.messages[0].type == "track"


def test_text_plain_and_gzip_bodies_are_read_as_json() -> None:
    with tracking() as api:
        body = json.dumps({"userId": "u-1", "event": "Plain", "writeKey": WRITE_KEY})
        plain = api.client.post("/v1/t", content=body, headers={"Content-Type": "text/plain"})
        zipped = api.post(
            "/batch",
            content=gzip.compress(
                json.dumps({"batch": [{**MINIMAL["track"], "type": "track"}]}).encode()
            ),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert plain.status_code == zipped.status_code == 200
        assert [m.event for m in api.log.messages] == ["Plain", "Signed Up"]


def test_write_key_from_header_body_or_each_batch_item() -> None:
    with tracking() as api:
        assert (
            api.post("/track", {**MINIMAL["track"], "writeKey": WRITE_KEY}, key=None).status_code
            == 200
        )
        mobile = {
            "batch": [
                {"type": "track", "userId": "u", "event": "A", "writeKey": WRITE_KEY},
                {"type": "track", "userId": "u", "event": "B", "writeKey": OTHER_KEY},
            ]
        }
        assert api.post("/batch", mobile, key=None).json() == {"success": True}
        assert [(m.event, m.source) for m in api.log.messages] == [
            ("Signed Up", "web"),
            ("A", "web"),
            ("B", "mobile"),
        ]
        # The key is a credential: it is never stored with the message.
        assert all(
            b"writeKey" not in e.payload and b"wk_" not in e.payload for e in api.log.entries
        )


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, MINIMAL["track"]),
        ({"Authorization": basic("wk_nope")}, MINIMAL["track"]),
        ({}, {**MINIMAL["track"], "writeKey": "wk_nope"}),
    ],
)
def test_missing_or_unknown_write_key_is_401_with_code_and_message(
    headers: dict[str, str], body: dict[str, object]
) -> None:
    with tracking() as api:
        response = api.client.post("/v1/track", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_write_key"
        assert response.json()["message"]
        assert api.log.entries == []


def test_a_batch_keeps_its_valid_messages_and_reports_each_reject() -> None:
    with tracking() as api:
        batch = [
            {"type": "track", "userId": "u", "event": "kept"},
            {"type": "track", "event": "no identity"},
            {"type": "bogus", "userId": "u"},
            {"type": "track", "userId": "u", "event": 7},
            {"type": "identify", "userId": "u", "traits": ["not", "an", "object"]},
            {"type": "identify", "anonymousId": "a", "traits": {"plan": "pro"}},
        ]
        response = api.post("/batch", {"batch": batch})
        assert response.status_code == 200  # rudder-sdk-python resends everything on anything else
        answer = response.json()
        assert answer["success"] is True and answer["accepted"] == 2
        assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
            (1, "no_user_anon_id"),
            (2, "invalid_type"),
            (3, "invalid_field"),
            (4, "invalid_field"),
        ]
        assert (
            answer["rejected"][2]["message"] == "batch[3].event: expected `str | null`, got `int`"
        )
        assert (
            answer["rejected"][3]["message"] == "batch[4].traits: expected an object, got an array"
        )
        assert [m.event or m.type for m in api.log.messages] == ["kept", "identify"]
        # ... and each reject is recorded for the source's owner to see, with what was sent.
        assert [(r.source, r.code) for r in api.rejects] == [
            ("web", "no_user_anon_id"),
            ("web", "invalid_type"),
            ("web", "invalid_field"),
            ("web", "invalid_field"),
        ]
        assert json.loads(api.rejects[0].payload) == batch[1]


def test_a_batch_with_no_valid_message_is_400_and_its_rejects_are_recorded() -> None:
    with tracking() as api:
        response = api.post("/batch", {"batch": [{"type": "track", "userId": "u"}]})
        assert response.status_code == 400
        assert response.json()["code"] == "missing_event"
        assert response.json()["message"] == "batch[0].event: required for track"
        assert [r.code for r in api.rejects] == ["missing_event"]


def test_single_invalid_call_is_400_naming_the_field() -> None:
    with tracking() as api:
        response = api.post("/track", {"userId": "u"})
        assert response.status_code == 400
        assert response.json() == {
            "success": False,
            "code": "missing_event",
            "message": "event: required for track",
        }
        assert [r.code for r in api.rejects] == ["missing_event"]


def test_limits_answer_413_and_are_configurable() -> None:
    with tracking(
        Limits(max_message_bytes=1024, max_request_bytes=4096, max_batch_messages=3)
    ) as api:
        big = {"userId": "u", "event": "E", "properties": {"x": "y" * 2000}}
        assert api.post("/track", big).json()["code"] == "message_too_large"
        huge = {"batch": [{"type": "track", **big}] * 3}
        too_large = api.post("/batch", huge)
        assert (too_large.status_code, too_large.json()["code"]) == (413, "request_too_large")
        many = {"batch": [{"type": "track", "userId": "u", "event": "E"}] * 4}
        too_many = api.post("/batch", many)
        assert (too_many.status_code, too_many.json()["code"]) == (413, "too_many_messages")
        mixed = {
            "batch": [{"type": "track", **big}, {"type": "track", "userId": "u", "event": "E"}]
        }
        answer = api.post("/batch", mixed).json()
        assert answer["accepted"] == 1 and answer["rejected"][0]["code"] == "message_too_large"


def test_gzip_bomb_is_413_without_inflating_it_all() -> None:
    with tracking() as api:
        bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")
        response = api.post("/batch", content=bomb, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"


def test_unsupported_encoding_and_broken_gzip_are_refused_precisely() -> None:
    with tracking() as api:
        br = api.post("/track", content=b"xx", headers={"Content-Encoding": "br"})
        assert (br.status_code, br.json()["code"]) == (415, "unsupported_encoding")
        broken = api.post("/track", content=b"not gzip", headers={"Content-Encoding": "gzip"})
        assert (broken.status_code, broken.json()["code"]) == (400, "invalid_gzip")


def test_full_log_sheds_load_with_503_and_retry_after() -> None:
    with tracking() as api:
        api.log.full = True
        response = api.post("/track", MINIMAL["track"])
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["code"] == "overloaded"


def test_client_metrics_are_accepted_and_discarded() -> None:
    with tracking() as api:
        response = api.client.post(
            "/v1/m", content=b'{"series":[]}', headers={"Content-Type": "text/plain"}
        )
        assert (response.status_code, response.json()) == (200, {"success": True})
        assert api.log.entries == []


def test_cors_preflight_allows_authorization_from_another_origin() -> None:
    with tracking() as api:
        response = api.client.options(
            "/v1/t",
            headers={
                "Origin": "http://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] in ("*", "http://shop.example")
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed


def test_unknown_route_and_method_answer_with_code_and_message() -> None:
    with tracking() as api:
        missing = api.post("/nope", MINIMAL["track"])
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        wrong = api.client.get("/v1/track")
        assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


def test_a_malformed_batch_sent_at_is_refused_even_when_items_have_their_own() -> None:
    with tracking() as api:
        item = {"type": "track", "userId": "u", "event": "E", "sentAt": "2026-01-01T00:00:00Z"}
        response = api.post("/batch", {"batch": [item], "sentAt": ""})
        assert response.status_code == 400
        assert response.json()["message"].startswith("sentAt:")
        assert api.log.messages == []


def test_a_valid_timestamp_with_no_utc_form_is_pinned_to_the_utc_edge() -> None:
    with tracking() as api:
        early = {"anonymousId": "a", "event": "E", "timestamp": "0001-01-01T00:00:01+00:01"}
        late = {"anonymousId": "a", "event": "E", "timestamp": "9999-12-31T23:59:59-00:01"}
        sent = {"anonymousId": "a", "event": "E", "sentAt": "0001-01-01T00:00:00+00:01"}
        for body in (early, late, sent):
            assert api.post("/track", body).status_code == 200
        stamps = [message.timestamp for message in api.log.messages]
        assert stamps[0].startswith("0001-01-01T00:00:00")
        assert stamps[1].startswith("9999-12-31T23:59:59")


def _tiny_items(count: int) -> list[dict[str, Any]]:
    return [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(count)]


def test_a_batch_context_over_the_message_limit_is_refused_before_anything_is_stored() -> None:
    with tracking() as api:
        body = {"batch": _tiny_items(250), "context": {"pad": "x" * 400_000}}
        answer = api.post("/batch", body)
        assert answer.status_code == 413
        assert answer.json() == {
            "success": False,
            "code": "envelope_too_large",
            "message": "context: the batch-level context and integrations are 400010 bytes,"
            " over the 32 KB message limit (they are copied into every message)",
        }
        assert api.log.entries == []
        assert [r.code for r in api.rejects] == ["envelope_too_large"]


def test_a_batch_context_copied_into_many_items_may_not_multiply_the_request() -> None:
    """20 KB of context x 250 items would store 5 MB from a 30 KB request."""
    with tracking() as api:
        body = json.dumps({"batch": _tiny_items(250), "context": {"pad": "x" * 20_000}})
        answer = api.post("/batch", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413
        assert answer.json()["message"] == (
            "context: the batch-level context and integrations (20010 bytes) copied into each of"
            f" 250 messages would add 5002500 bytes to a {len(body)}-byte request"
            f" (at most {len(body)});"
            " send them inside each message or in smaller batches"
        )
        assert api.log.entries == []


def test_stored_bytes_stay_within_a_small_multiple_of_the_request() -> None:
    """The largest envelope the bound lets through: what is stored stays near the request."""
    with tracking() as api:
        items = _tiny_items(100)
        body = {"batch": items, "context": {"pad": "x" * 150}}
        size = len(json.dumps(body, separators=(",", ":")))
        answer = api.post(
            "/batch",
            content=json.dumps(body, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200
        stored = sum(len(e.payload) for e in api.log.entries)
        assert len(api.log.entries) == 100
        # the request, the envelope's copies (at most the request's size or 16 KB), and the
        # fields Turnout fills in (messageId, receivedAt, timestamp, source: ~200 bytes each)
        assert stored <= size + max(size, 16 * 1024) + 250 * len(items)


def test_an_item_over_the_limit_once_the_context_is_merged_is_refused_alone() -> None:
    with tracking() as api:
        big = {"type": "track", "userId": "big", "event": "E", "properties": {"p": "y" * 30_000}}
        body = {"batch": [*_tiny_items(3), big], "context": {"pad": "x" * 8_000}}
        answer = api.post("/batch", body)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == 3
        [reject] = answer.json()["rejected"]
        assert reject["index"] == 3 and reject["code"] == "message_too_large"
        assert reject["message"].startswith("batch[3]: 38")
        assert reject["message"].endswith(
            " bytes once the batch-level context is merged in, over the 32 KB message limit"
        )
        assert [m.user_id for m in api.log.messages] == ["u0", "u1", "u2"]
        assert all(m.context and m.context["pad"] == "x" * 8_000 for m in api.log.messages)
