"""Decoding bodies: every malformed input is an `InvalidMessage` naming where, never a crash."""

from __future__ import annotations

import json

import pytest

from turnout.spec.incoming import (
    MAX_DEPTH,
    InvalidMessage,
    check_utf8,
    decode_batch,
    decode_call,
    decode_deep_batch,
)


def code_of(body: bytes, batch: bool = False) -> tuple[str, str]:
    with pytest.raises(InvalidMessage) as caught:
        check_utf8(body)
        decode_batch(body) if batch else decode_call(body)
    return caught.value.code, caught.value.message


def test_malformed_json_utf8_and_non_objects() -> None:
    assert code_of(b'{"userId": ')[0] == "invalid_json"
    assert code_of(b"")[0] == "invalid_json"
    assert code_of(b'{"userId": "\xff"}') == ("invalid_utf8", "body: not valid UTF-8 at byte 12")
    assert code_of(b'{"userId": "u", "properties": {"a": "\xc3"}}')[0] == "invalid_utf8"
    assert code_of(b"[1, 2]") == ("invalid_field", "body: expected `object`, got `array`")
    assert code_of(b'"text"')[0] == "invalid_field"
    assert code_of(b'{"batch": {}}', batch=True) == (
        "invalid_field",
        "batch: expected `array`, got `object`",
    )


def test_nesting_is_limited_precisely_and_cheaply() -> None:
    def nested(levels: int) -> bytes:
        return b'{"userId":"u","properties":' + b'{"a":' * (levels - 1) + b"1" + b"}" * levels

    decode_call(nested(MAX_DEPTH))
    assert code_of(nested(MAX_DEPTH + 1)) == (
        "too_deep",
        f"body: nested deeper than {MAX_DEPTH} levels",
    )
    assert code_of(nested(10_000))[0] == "too_deep"
    arrays = b'{"userId":"u","properties":{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    assert code_of(arrays)[0] == "too_deep"
    # Brackets inside strings are text, not nesting.
    decode_call(json.dumps({"userId": "u", "properties": {"s": "[" * 5000}}).encode())


def test_a_batch_with_an_item_nested_ten_thousand_deep_still_yields_the_others() -> None:
    deep = (
        b'{"type":"track","userId":"u","event":"deep","properties":'
        + b"[" * 10_000
        + b"]" * 10_000
        + b"}"
    )
    good = json.dumps({"type": "track", "userId": "u", "event": "good"}).encode()
    body = (
        b'{"sentAt":"2026-01-01T00:00:00Z","batch":['
        + good
        + b","
        + deep
        + b","
        + good
        + b'],"writeKey":"k"}'
    )
    with pytest.raises(InvalidMessage):
        decode_batch(body)  # the decoder cannot skip over the deep item ...
    batch = decode_deep_batch(body)  # ... so the items are found by hand
    assert (batch.write_key, batch.sent_at, len(batch.batch)) == ("k", "2026-01-01T00:00:00Z", 3)
    assert decode_call(batch.batch[0]).event == "good"
    with pytest.raises(InvalidMessage) as caught:
        decode_call(batch.batch[1], "batch[1].")
    assert caught.value.message == f"batch[1]: nested deeper than {MAX_DEPTH} levels"


def test_wrong_types_name_the_field() -> None:
    assert code_of(b'{"userId": "u", "event": ["x"]}') == (
        "invalid_field",
        "event: expected `str | null`, got `array`",
    )
    with pytest.raises(InvalidMessage) as caught:
        decode_call(b'{"sentAt": 5}', "batch[2].")
    assert caught.value.message == "batch[2].sentAt: expected `str | null`, got `int`"


def test_a_hundred_thousand_keys_decode_quickly() -> None:
    body = json.dumps({"userId": "u", "properties": {f"k{i}": i for i in range(100_000)}}).encode()
    assert decode_call(body).user_id == "u"
