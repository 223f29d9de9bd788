"""The stored message to a playbook's dict and back: same as msgspec's own conversions, cheaper."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from turnout.playbooks import Playbook, as_dict, as_message
from turnout.spec.message import Message

STORED: dict[str, Any] = {
    "type": "track",
    "messageId": "m-1",
    "receivedAt": "2026-11-28T10:00:00.123Z",
    "timestamp": "2026-11-28T10:00:00.000Z",
    "userId": "u-1",
    "event": "Order Completed",
    "properties": {"total": 9.5, "items": [{"sku": "a"}]},
    "context": {"page": {"url": "https://shop.example/"}, "ip": "203.0.113.7"},
    "source": "web",
}


def stored(**fields: Any) -> Message:
    return msgspec.convert({**STORED, **fields}, Message)


@pytest.mark.parametrize(
    "message",
    [
        stored(),
        stored(context={}, source=""),  # fields at their default are left out, as msgspec does
        stored(type="identify", event=None, traits={"email": "a@b.c"}, integrations={"All": True}),
    ],
)
def test_as_dict_is_to_builtins_without_the_copies(message: Message) -> None:
    data = as_dict(message)
    assert data == msgspec.to_builtins(message)
    assert data.get("properties") is message.properties  # shared, not copied


def test_as_message_of_an_unchanged_message_is_the_message() -> None:
    message = stored()
    assert as_message(as_dict(message), message, frozenset()) is message


def test_as_message_replaces_only_the_changed_fields() -> None:
    message = stored()
    playbook = Playbook.compile([
        {"rename_event": "Purchase", "set": {"properties.currency": "USD"},
         "remove": ["context.ip", "userId"]},
    ])  # fmt: skip
    shaped = playbook.apply(as_dict(message))
    assert shaped.fields == {"event", "properties", "context", "userId"}
    typed = as_message(shaped.messages[0], message, shaped.fields)
    assert typed == msgspec.convert(shaped.messages[0], Message)
    assert (typed.event, typed.user_id, typed.properties, typed.context) == (
        "Purchase", None, {"total": 9.5, "items": [{"sku": "a"}], "currency": "USD"},
        {"page": {"url": "https://shop.example/"}},
    )  # fmt: skip
    assert typed.traits is message.traits and message.event == "Order Completed"


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        ({"rename_event": "Purchase"}, {"event"}),
        ({"set": {"properties.a": 1, "traits.b": 2}}, {"properties", "traits"}),
        ({"copy": {"traits.total": "properties.total"}}, {"traits"}),
        ({"move": {"traits.total": "properties.total"}}, {"traits", "properties"}),
        ({"move": {"name": "event"}}, {"name", "event"}),
        ({"remove": ["context.ip", "properties.t*"]}, {"context", "properties"}),
        ({"remove": ["traits.none", "properties.none*"]}, set()),  # nothing there: no change
        ({"keep": {"context": ["page"]}}, {"context"}),
        ({"transform": {"properties.total": "to_string", "userId": "upper"}},
         {"properties", "userId"}),
        ({"transform": {"properties.items": "lower"}}, set()),  # cannot apply: no change
    ],
)  # fmt: skip
def test_fields_name_every_top_level_field_changed(
    rule: dict[str, Any], fields: set[str]
) -> None:
    message = stored()
    shaped = Playbook.compile([rule]).apply(as_dict(message))
    assert shaped.fields == fields
    assert as_message(shaped.messages[0], message, shaped.fields) == msgspec.convert(
        shaped.messages[0], Message
    )


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ([{"set": {"userId": 42}}], "Expected `str | null`, got `int` - at `$.userId`"),
        ([{"set": {"properties": "x"}}], "Expected `object | null`, got `str` - at `$.properties`"),
        ([{"set": {"context": [1]}}], "Expected `object`, got `array` - at `$.context`"),
        ([{"remove": ["timestamp"]}], "Object missing required field `timestamp`"),
    ],
)
def test_as_message_names_what_a_playbook_made_invalid(
    rules: list[dict[str, Any]], error: str
) -> None:
    message = stored()
    shaped = Playbook.compile(rules).apply(as_dict(message))
    for fields in (shaped.fields, None):  # quick check or full conversion: the same answer
        with pytest.raises(msgspec.ValidationError) as caught:
            as_message(shaped.messages[0], message, fields)
        assert str(caught.value) == error


def test_fields_are_unknown_once_a_function_ran(tmp_path: Any) -> None:
    (tmp_path / "f.py").write_text("def f(message):\n    message['userId'] = 'u-2'\n"
                                   "    return message\n")  # fmt: skip
    playbook = Playbook.compile([{"function": "f.py:f"}], base_dir=tmp_path, allow_functions=True)
    message = stored()
    shaped = playbook.apply(as_dict(message))
    assert shaped.fields is None
    assert as_message(shaped.messages[0], message, shaped.fields).user_id == "u-2"
