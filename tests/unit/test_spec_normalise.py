"""The spec's rules applied to each call: identity, ids, clocks, context.ip, batch context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from turnout.spec.incoming import InvalidMessage, decode_call
from turnout.spec.message import Message
from turnout.spec.normalise import RequestFacts, normalise, stored_message

RECEIVED = datetime(2026, 11, 28, 10, 0, 0, 500000, tzinfo=UTC)


def stored(
    body: dict[str, Any],
    call_type: str | None = "track",
    ip: str | None = "203.0.113.9",
    **facts: Any,
) -> Message:
    call = decode_call(msgspec.json.encode(body))
    return stored_message(normalise(call, RequestFacts(RECEIVED, ip, **facts), "web", call_type))


def problem(body: dict[str, Any], call_type: str | None = "track") -> tuple[str, str]:
    with pytest.raises(InvalidMessage) as caught:
        stored(body, call_type)
    return caught.value.code, caught.value.message


def test_timestamp_is_corrected_for_the_device_clock() -> None:
    # The device's clock is 1 h fast: it says the call happened 2 s before it was sent.
    message = stored(
        {
            "userId": "u",
            "event": "E",
            "originalTimestamp": "2026-11-28T11:00:00.000Z",
            "sentAt": "2026-11-28T11:00:02.000Z",
        }
    )
    assert message.timestamp == "2026-11-28T09:59:58.500Z"
    assert message.received_at == "2026-11-28T10:00:00.500Z"
    assert message.original_timestamp == "2026-11-28T11:00:00.000Z"


def test_timestamp_without_original_counts_as_original_as_segment_python_sends_it() -> None:
    message = stored(
        {"userId": "u", "event": "E", "timestamp": "2026-11-28T12:00:00+02:00"},
        sent_at="2026-11-28T10:00:05+00:00",  # batch-level sentAt, as segment-python sends it
    )
    assert message.timestamp == "2026-11-28T09:59:55.500Z"


def test_historical_timestamp_without_sent_at_is_kept_and_absent_one_is_received_at() -> None:
    assert stored({"userId": "u", "event": "E", "timestamp": "2020-01-01T00:00:00Z"}).timestamp == (
        "2020-01-01T00:00:00.000Z"
    )
    assert stored({"userId": "u", "event": "E"}).timestamp == "2026-11-28T10:00:00.500Z"


def test_message_id_is_generated_when_missing_and_kept_when_given() -> None:
    generated = stored({"userId": "u", "event": "E"}).message_id
    assert len(generated) == 36 and generated != stored({"userId": "u", "event": "E"}).message_id
    assert stored({"userId": "u", "event": "E", "messageId": "m-1"}).message_id == "m-1"
    assert stored({"userId": "u", "event": "E", "messageId": 42}).message_id == "42"
    assert problem({"userId": "u", "event": "E", "messageId": "m" * 101}) == (
        "invalid_field",
        "messageId: longer than 100 characters",
    )


def test_numeric_ids_become_strings() -> None:
    message = stored({"userId": 123, "anonymousId": 4.0, "groupId": 7}, "group")
    assert (message.user_id, message.anonymous_id, message.group_id) == ("123", "4", "7")


@pytest.mark.parametrize(
    ("body", "call_type", "code", "text"),
    [
        ({"event": "E"}, "track", "no_user_anon_id", "userId or anonymousId: one is required"),
        ({"userId": "", "event": "E"}, "track", "no_user_anon_id", None),
        ({"userId": "u"}, "track", "missing_event", "event: required for track"),
        ({"userId": "u"}, "group", "missing_group_id", "groupId: required for group"),
        ({"userId": "u"}, "alias", "missing_previous_id", None),
        ({"userId": "u"}, None, "missing_type", "type: required in each batch item"),
        ({"userId": "u", "type": "purchase"}, None, "invalid_type", None),
        ({"userId": True, "event": "E"}, "track", "invalid_field", None),
        (
            {"userId": "u", "event": "E", "timestamp": "yesterday"},
            "track",
            "invalid_timestamp",
            None,
        ),
        ({"userId": "u", "event": "E", "properties": 5}, "track", "invalid_field", None),
        ({"userId": "u", "event": "E", "context": "x"}, "track", "invalid_field", None),
    ],
)
def test_calls_that_can_never_succeed_name_the_field(
    body: dict[str, Any], call_type: str | None, code: str, text: str | None
) -> None:
    got_code, got_text = problem(body, call_type)
    assert got_code == code
    if text is not None:
        assert got_text == text


def test_context_ip_comes_from_the_request_unless_given() -> None:
    assert stored({"userId": "u", "event": "E"}).context == {"ip": "203.0.113.9"}
    assert stored({"userId": "u", "event": "E", "context": {}}).context == {"ip": "203.0.113.9"}
    given = stored({"userId": "u", "event": "E", "context": {"ip": "198.51.100.1", "locale": "fr"}})
    assert given.context == {"ip": "198.51.100.1", "locale": "fr"}
    nested = stored({"userId": "u", "event": "E", "context": {"device": {"ip": "x"}}})
    assert nested.context == {"ip": "203.0.113.9", "device": {"ip": "x"}}
    assert stored({"userId": "u", "event": "E"}, ip=None).context == {}


def test_batch_context_and_integrations_are_merged_into_each_item_item_keys_winning() -> None:
    message = stored(
        {"userId": "u", "event": "E", "context": {"locale": "fr"}, "integrations": {"All": False}},
        context={"locale": "en", "library": {"name": "mobile"}},
        integrations={"All": True, "Customer.io": True},
    )
    assert message.context == {"locale": "fr", "library": {"name": "mobile"}, "ip": "203.0.113.9"}
    assert message.integrations == {"All": False, "Customer.io": True}


def test_null_free_form_parts_count_as_absent_and_unknown_fields_are_dropped() -> None:
    message = stored({"userId": "u", "event": "E", "properties": None, "context": None, "_x": 1})
    assert message.properties is None and message.context == {"ip": "203.0.113.9"}


def test_rudder_identify_traits_in_context_are_kept_for_the_destination() -> None:
    message = stored({"userId": "u", "context": {"traits": {"email": "a@b.c"}}}, "identify")
    assert message.context["traits"] == {"email": "a@b.c"}
