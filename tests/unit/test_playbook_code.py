"""A playbook runs as generated code: whatever its text holds is data, writes stay copy-on-write
however often a rule touches the same object, and big or deep playbooks run like small ones."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from turnout.playbooks import Playbook, as_dict, compile_condition
from turnout.playbooks.codegen import Source
from turnout.spec.message import Message

# Text that would do something if it were ever read as Python.
CODE = "__import__('os').system('exit 3')"
QUOTES = "a\"b'c\\d\n}{)("


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": "m-1", "event": "Order Completed", "userId": "u-1",
            **fields}  # fmt: skip


def test_text_that_looks_like_code_is_data() -> None:
    rules: list[dict[str, Any]] = [
        {"name": CODE, "when": f'event = "{CODE}"', "drop": True},
        {"name": QUOTES, "when": 'properties.note = "a\\"b\'c\\\\d\\n}{)("',
         "set": {f"properties.{CODE}": QUOTES, "properties.x\\.y": CODE},
         "rename_event": CODE},
        {"when": f'contains(properties.note, "{CODE[:8]}") or match(event, "__import__*")',
         "remove": ["properties.__*"], "transform": {"properties.x\\.y": "upper"}},
    ]  # fmt: skip
    playbook = Playbook.compile(rules)
    assert playbook.apply(track(event=CODE)).filtered == f'playbook rule 1 "{CODE}": drop'
    shaped = playbook.apply(track(properties={"note": QUOTES}))
    assert shaped.messages == [track(event=CODE, properties={"note": QUOTES, "x.y": CODE.upper()})]
    assert shaped.rules_applied == [f'rule 2 "{QUOTES}"', "rule 3"]
    assert compile_condition(f'properties.note = "{CODE}"')(track(properties={"note": CODE}))


def test_the_same_objects_written_again_and_again_are_copied_once_and_never_shared() -> None:
    message = track(
        properties={"a": {"b": 1}, "keep": 1, "internal_x": 2},
        traits={"email": " A@B.C ", "firstName": "Ada", "ssn": "0"},
        context={"app": {"name": "web"}, "ip": "203.0.113.7"},
    )
    before = copy.deepcopy(message)
    rules: list[dict[str, Any]] = [
        {"set": {"properties.a.c": 2, "context.app.env": "prod"}},
        {"when": "exists(properties.a.c)", "remove": ["properties.internal_*", "context.ip"],
         "move": {"traits.first_name": "traits.firstName"}},
        {"when": "exists(traits.nothing)", "set": {"properties": {"replaced": True}}},
        {"set": {"properties.a.d": 3}, "transform": {"traits.email": ["trim", "lower"]}},
        {"keep": {"traits": ["email", "first_name"], "properties.a": ["b", "d"]}},
        {"set": {"properties": {"whole": 1}}, "copy": {"traits.copy": "properties"}},
        {"set": {"properties.after": 2, "traits.copy.more": 3}},
    ]  # fmt: skip
    out = Playbook.compile(rules).apply(message).messages[0]
    assert message == before
    assert out == track(
        properties={"whole": 1, "after": 2},
        traits={"email": "a@b.c", "first_name": "Ada", "copy": {"whole": 1, "more": 3}},
        context={"app": {"name": "web", "env": "prod"}},
    )
    assert list(out["traits"]) == ["email", "first_name", "copy"]


def test_a_split_message_is_shaped_on_its_own_copy(tmp_path: Any) -> None:
    (tmp_path / "f.py").write_text(
        "def split(message):\n"
        "    return [message, {**message, 'messageId': 'm-2'}]\n"
    )  # fmt: skip
    rules: list[dict[str, Any]] = [
        {"set": {"properties.a": 1}},
        {"function": "f.py:split"},
        {"set": {"properties.b": 2}, "remove": ["properties.a"]},
        {"when": 'messageId = "m-2"', "set": {"properties.c": 3}},
    ]
    playbook = Playbook.compile(rules, base_dir=tmp_path, allow_functions=True)
    message = track(properties={"x": 0})
    shaped = playbook.apply(message)
    assert message == track(properties={"x": 0})
    assert shaped.messages == [
        track(properties={"x": 0, "b": 2}),
        track(messageId="m-2", properties={"x": 0, "b": 2, "c": 3}),
    ]
    assert shaped.messages[0]["properties"] is not shaped.messages[1]["properties"]
    assert (shaped.changed, shaped.fields) == (True, None)
    assert shaped.rules_applied == ["rule 1", "rule 2", "rule 3", "rule 4"]


def test_a_playbook_of_many_rules_and_a_deeply_nested_condition() -> None:
    rules: list[dict[str, Any]] = [
        {"when": f'type = "{kind}" and event = "E{number}"',
         "set": {f"properties.p{number}": number, "context.app.n": number}}
        for number in range(300) for kind in ("track", "identify")
    ]  # fmt: skip
    rules.append({"when": "not " * 49 + 'event = "E7"', "rename_event": "not E7"})
    playbook = Playbook.compile(rules)
    shaped = playbook.apply(track(event="E7"))
    assert shaped.messages == [track(event="E7", properties={"p7": 7}, context={"app": {"n": 7}})]
    assert shaped.rules_applied == ["rule 15"]
    assert playbook.apply(track(event="E8")).messages[0]["event"] == "not E7"


def test_as_dict_writes_the_fields_in_msgspecs_order() -> None:
    message = msgspec.convert(
        {"type": "identify", "messageId": "m", "receivedAt": "2026-11-28T10:00:00.000Z",
         "timestamp": "2026-11-28T10:00:00.000Z", "anonymousId": "a", "traits": {"x": 1},
         "context": {"ip": "1"}, "source": "web"},
        Message,
    )  # fmt: skip
    data = as_dict(message)
    assert list(data) == list(msgspec.to_builtins(message)) == [
        "type", "messageId", "receivedAt", "timestamp", "anonymousId", "traits", "context",
        "source",
    ]  # fmt: skip


def test_a_helper_read_by_name_stops_the_generated_code() -> None:
    """Every helper must reach the generated code as a constant; one the pattern missed would be
    looked up by name at run time, so the compiler's output is checked for global reads. An
    attribute that shares a helper's name (`message.type`) is not such a read."""
    source = Source({"_helper": len})
    with source.block("def f(message)"):
        source.line("return message.type, _helper(message.dict)")
    f = source.function("f")

    class Box:
        type = "t"
        dict = "abc"

    assert f(Box()) == ("t", 3)
    sneaky = Source({"_helper": len})
    sneaky._lines.append("def g(x):\n    return _helper(x)")  # written past the pattern
    with pytest.raises(ValueError, match=r"generated code reads \['_helper'\] by name"):
        sneaky.function("g")


def test_patterns_answer_alike_past_the_remembered_sets_of_keys() -> None:
    """A pattern's matches are remembered per set of keys, up to a bound: calls with hundreds of
    different sets of keys, each seen twice, all lose exactly their matching keys."""
    playbook = Playbook.compile([{"remove": ["properties.internal_*", "traits.*_tmp"]}])
    for round_ in range(2):
        for number in range(300):
            properties = {f"k{number}": 1, f"internal_{number}": 2, "internal_": 3, "x": 4}
            traits = {"a_tmp": 1, f"b{number}": 2}
            message = track(properties=properties, traits=traits)
            shaped = playbook.apply(message)
            assert shaped.messages == [
                track(properties={f"k{number}": 1, "x": 4}, traits={f"b{number}": 2})
            ], (round_, number)
            assert message == track(properties=properties, traits=traits)  # input untouched
