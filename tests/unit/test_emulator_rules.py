"""The Customer.io rules the emulator encodes, checked without a server."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from turnout.emulators.customerio import EmulatorConfig
from turnout.emulators.customerio import operations as ops
from turnout.emulators.customerio.auth import Authenticator, decode_basic
from turnout.emulators.customerio.identifiers import Ident, classify, is_ulid, path_segments
from turnout.emulators.customerio.ratelimit import TokenBucket
from turnout.emulators.customerio.recorder import RecordedRequest, RequestLog
from turnout.emulators.customerio.responses import UNAUTHORIZED, meta_errors
from turnout.emulators.customerio.v1 import identify, merge, track
from turnout.emulators.customerio.v2 import parse_item


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("cio_03000001", "cio_id", "03000001"),
        ("Person@Example.com", "email", "Person@Example.com"),
        ("user-1", "id", "user-1"),
        ("+15551234567", "id", "+15551234567"),
        ("not-an@email", "id", "not-an@email"),
    ],
)
def test_path_identifier_is_classified_by_shape(raw: str, kind: str, value: str) -> None:
    assert classify(raw) == Ident(kind, value)  # type: ignore[arg-type]


def test_emails_compare_case_insensitively() -> None:
    assert Ident("email", "A@B.co").key() == Ident("email", "a@b.co").key()
    assert Ident("id", "A").key() != Ident("id", "a").key()


def test_encoded_slash_stays_inside_one_segment() -> None:
    segments = path_segments(b"/api/v1/customers/user%2Fwith%2Fslashes/events")
    assert segments == ["api", "v1", "customers", "user/with/slashes", "events"]


def test_ulid_shape() -> None:
    assert is_ulid("01BX5ZZKBKACTAV9WEVGEMMVRY")
    assert not is_ulid("01BX5ZZKBKACTAV9WEVGEMMVR")  # 25 chars
    assert not is_ulid("01BX5ZZKBKACTAV9WEVGEMMVRU")  # U is not Crockford
    assert not is_ulid("3e4666bf-d5e5-4aa7-b8ce-cefe41c7568a")


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("strip_padding", [False, True])
def test_basic_auth_accepts_both_alphabets_with_or_without_padding(
    encode: Callable[[bytes], bytes], strip_padding: bool
) -> None:
    # Chosen so the standard and URL-safe encodings differ (contain + / or - _).
    site, key = "s>?~", "k~~?>"
    token = encode(f"{site}:{key}".encode()).decode()
    if strip_padding:
        token = token.rstrip("=")
    assert decode_basic(f"Basic {token}") == (site, key)
    assert Authenticator(EmulatorConfig(site_id=site, api_key=key)).check(f"Basic {token}")


def test_basic_auth_rejects_garbage() -> None:
    auth = Authenticator(EmulatorConfig(site_id="S", api_key="K"))
    assert not auth.check(None)
    assert not auth.check("Bearer abc")
    assert not auth.check("Basic !!!")
    assert not auth.check("Basic " + base64.b64encode(b"S:wrong").decode())


def test_error_bodies_are_pretty_printed_like_customerio() -> None:
    assert UNAUTHORIZED.body == b'{\n  "meta": {\n    "error": "Unauthorized request"\n  }\n}\n'
    assert meta_errors(["a"]).body == b'{\n  "meta": {\n    "errors": [\n      "a"\n    ]\n  }\n}\n'


def _messages(reply: object) -> list[str]:
    import json

    return json.loads(reply.body)["meta"]["errors"]  # type: ignore[attr-defined]


def test_identify_lists_every_violation_with_live_texts() -> None:
    reply = identify("u1", {"id": "u2", "token": "x" * 1001, "n" * 151: 1})
    assert _messages(reply) == [
        "id attribute and identifier are not the same value",
        "value for attribute 'token' cannot be longer than 1000 bytes",
        f"attribute name '{'n' * 40}...' cannot be longer than 150 bytes",
    ]


def test_identify_counts_attribute_bytes_not_characters() -> None:
    assert isinstance(identify("u1", {"a": "é" * 500}), ops.Identify)  # 1000 bytes: fits
    assert _messages(identify("u1", {"a": "é" * 501})) == [
        "value for attribute 'a' cannot be longer than 1000 bytes"
    ]


def test_identify_limits_attribute_count_and_identifier_length() -> None:
    assert (
        "more than 300 attributes" in _messages(identify("u1", {f"a{i}": i for i in range(301)}))[0]
    )
    assert _messages(identify("x" * 151, {})) == ["identifier cannot be longer than 150 bytes"]


def test_event_rules() -> None:
    assert _messages(track("u1", {"name": "x" * 101})) == [
        "event name cannot be longer than 100 bytes"
    ]
    assert _messages(track("u1", {"data": {}})) == ["event name is required"]
    assert _messages(track("u1", {"name": "a", "id": "not-a-ulid"})) == [
        "event id must be a ULID (26 Crockford base32 characters)"
    ]
    assert _messages(track("u1", {"name": "a", "data": {"big": "x" * 100_000}})) == [
        "event data cannot be longer than 100000 bytes"
    ]
    op = track("u1", {"name": "  padded  ", "type": "other"})
    assert isinstance(op, ops.Track) and op.name == "padded" and op.type == "event"


def test_merge_needs_exactly_one_identifier_per_side() -> None:
    reply = merge({"primary": {"id": "a", "email": "a@b.co"}, "secondary": {"id": "b"}})
    assert reply.status == 400  # type: ignore[union-attr]
    assert b'"error"' in reply.body  # type: ignore[union-attr]
    ok = merge({"primary": {"cio_id": "03000001"}, "secondary": {"email": "b@b.co"}})
    assert ok == ops.Merge(Ident("cio_id", "03000001"), Ident("email", "b@b.co"))


def test_v2_item_violations_name_field_and_reason() -> None:
    result = parse_item({"type": "person", "identifiers": {"id": "1"}, "action": "event"})
    assert isinstance(result, list)
    assert (result[0].field, result[0].reason) == ("name", "required")
    two_ids = parse_item(
        {"type": "person", "identifiers": {"id": "1", "email": "a@b.co"}, "action": "identify"}
    )
    assert isinstance(two_ids, list) and two_ids[0].field == "identifiers"
    anon = parse_item(
        {"type": "person", "identifiers": {"anonymous_id": "a1"}, "action": "page", "name": "/x"}
    )
    assert isinstance(anon, ops.Track) and anon.anonymous_id == "a1" and anon.who is None


def test_token_bucket_allows_burst_then_asks_to_wait() -> None:
    bucket = TokenBucket(3, 3.0)
    assert [bucket.take() for _ in range(3)] == [None, None, None]
    assert bucket.take() == 1


def test_request_log_is_bounded_but_counts_everything() -> None:
    log = RequestLog(limit=2)
    for _ in range(5):
        record = RecordedRequest(
            seq=0,
            method="PUT",
            path="/x",
            query="",
            endpoint="e",
            headers={},
            body=None,
            body_size=0,
            received_at=0.0,
        )
        log.start(record)
        log.finish(record, 200)
    assert len(log) == 2 and log.total == 5 and log.by_status[200] == 5
    assert [r.seq for r in log] == [4, 5]
