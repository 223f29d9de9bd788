"""Playbook actions, one promise per test: exact messages out, exact reasons and adjustments."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from turnout.playbooks import Playbook, PlaybookError, Shaped, canonical_toml, describe_diff


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": "m-1", "event": "Order Completed", "userId": "u-1",
            **fields}  # fmt: skip


def apply(rules: list[dict[str, Any]], message: dict[str, Any], **options: Any) -> Shaped:
    return Playbook.compile(rules, **options).apply(message)


def one(rules: list[dict[str, Any]], message: dict[str, Any]) -> dict[str, Any]:
    shaped = apply(rules, message)
    assert shaped.filtered is None and shaped.error is None and len(shaped.messages) == 1, shaped
    return shaped.messages[0]


def compile_error(rules: list[dict[str, Any]], **options: Any) -> PlaybookError:
    with pytest.raises(PlaybookError) as caught:
        Playbook.compile(rules, **options)
    return caught.value


# -- drop, rename_event -------------------------------------------------------------------------


def test_drop_filters_with_the_rule_as_reason() -> None:
    rules = [{"when": 'event = "Test Event"', "drop": True}]
    assert apply(rules, track(event="Test Event")) == Shaped(
        messages=[], filtered="playbook rule 1: drop", rules_applied=["rule 1"]
    )
    assert apply(rules, track()).messages == [track()]


def test_a_named_rule_is_named_in_the_reason() -> None:
    rules = [{"name": "no test traffic", "when": 'event = "Test Event"', "drop": True}]
    shaped = apply(rules, track(event="Test Event"))
    assert shaped.filtered == 'playbook rule 1 "no test traffic": drop'
    assert shaped.rules_applied == ['rule 1 "no test traffic"']


def test_drop_false_does_nothing() -> None:
    message = track()
    shaped = apply([{"drop": False, "set": {"properties.x": 1}}], message)
    assert shaped.messages == [track(properties={"x": 1})]


def test_rules_after_a_drop_do_not_run() -> None:
    shaped = apply([{"drop": True}, {"set": {"properties.x": 1}}], track())
    assert shaped.rules_applied == ["rule 1"]


def test_rename_event() -> None:
    assert one([{"rename_event": "Purchase"}], track()) == track(event="Purchase")


def test_rename_event_of_a_call_without_event_is_an_adjustment() -> None:
    identify = {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}}
    shaped = apply([{"rename_event": "Purchase"}], dict(identify))
    assert shaped.messages == [identify]
    assert shaped.adjustments == [
        "playbook rule 1: rename_event: the message has no event (type 'identify'); left as is"
    ]
    assert shaped.changed is False


# -- set, copy, move ----------------------------------------------------------------------------


def test_set_writes_constants_creating_objects_on_the_way() -> None:
    rules = [{"set": {"properties.currency": "USD", "context.app.env": "prod",
                      "properties.tags": ["a"], "properties.total": 0}}]  # fmt: skip
    assert one(rules, track(properties={"total": 9})) == track(
        properties={"total": 0, "currency": "USD", "tags": ["a"]},
        context={"app": {"env": "prod"}},
    )


def test_set_constants_are_never_shared_between_messages() -> None:
    playbook = Playbook.compile([{"set": {"properties.tags": ["a"]}}])
    first = playbook.apply(track()).messages[0]
    first["properties"]["tags"].append("changed later")
    assert playbook.apply(track()).messages[0]["properties"]["tags"] == ["a"]


def test_set_under_a_field_that_is_not_an_object_is_an_adjustment() -> None:
    shaped = apply([{"set": {"properties.total.currency": "USD", "properties.x": 1}}],
                   track(properties={"total": 9}))  # fmt: skip
    assert shaped.messages == [track(properties={"total": 9, "x": 1})]
    assert shaped.adjustments == [
        "playbook rule 1: set properties.total.currency: properties.total is a number, not an "
        "object; not set"
    ]


def test_copy_target_from_source() -> None:
    message = track(properties={"total": 9.5, "items": [{"sku": "a"}]})
    out = one([{"copy": {"properties.revenue": "properties.total",
                         "traits.first_item": "properties.items.0"}}], message)  # fmt: skip
    assert out == track(
        properties={"total": 9.5, "items": [{"sku": "a"}], "revenue": 9.5},
        traits={"first_item": {"sku": "a"}},
    )
    out["traits"]["first_item"]["sku"] = "changed"
    assert out["properties"]["items"] == [{"sku": "a"}]  # a copy, not the same object


def test_copy_an_object_into_itself() -> None:
    out = one([{"copy": {"properties.snapshot": "properties"}}], track(properties={"a": 1}))
    assert out["properties"] == {"a": 1, "snapshot": {"a": 1}}


def test_copy_from_a_missing_field_is_an_adjustment() -> None:
    shaped = apply([{"copy": {"properties.revenue": "properties.total"}}], track())
    assert shaped.messages == [track()]
    assert shaped.adjustments == [
        "playbook rule 1: copy properties.total to properties.revenue: properties.total is "
        "missing; nothing to copy"
    ]


def test_move_renames_traits_to_customerio_attribute_names() -> None:
    identify = {"type": "identify", "userId": "u-1",
                "traits": {"firstName": "Ada", "lastName": "L", "plan": "pro"}}  # fmt: skip
    out = one([{"move": {"traits.first_name": "traits.firstName",
                         "traits.last_name": "traits.lastName"}}], identify)  # fmt: skip
    assert out == {"type": "identify", "userId": "u-1",
                   "traits": {"plan": "pro", "first_name": "Ada", "last_name": "L"}}  # fmt: skip


def test_move_that_cannot_write_keeps_the_source() -> None:
    message = track(properties={"total": 9, "meta": "text"})
    shaped = apply([{"move": {"properties.meta.total": "properties.total"}}], message)
    assert shaped.messages == [track(properties={"total": 9, "meta": "text"})]
    assert shaped.adjustments == [
        "playbook rule 1: move properties.total to properties.meta.total: properties.meta is a "
        "string, not an object; left as is"
    ]


def test_move_from_a_missing_field_is_an_adjustment() -> None:
    shaped = apply([{"move": {"traits.email": "traits.Email"}}], track())
    assert shaped.adjustments == [
        "playbook rule 1: move traits.Email to traits.email: traits.Email is missing; nothing to "
        "move"
    ]


# -- remove, keep -------------------------------------------------------------------------------


def test_remove_paths_and_globs() -> None:
    message = track(
        properties={"internal_id": 1, "internal_note": "x", "internals": 2, "total": 3},
        context={"ip": "1.2.3.4", "page": {"url": "u"}},
    )
    out = one([{"remove": ["properties.internal_*", "context.ip", "traits.ssn"]}], message)
    assert out == track(properties={"internals": 2, "total": 3}, context={"page": {"url": "u"}})


def test_remove_an_escaped_wildcard_is_literal() -> None:
    out = one([{"remove": ["properties.a\\*"]}], track(properties={"a*": 1, "ab": 2}))
    assert out["properties"] == {"ab": 2}


def test_remove_a_single_path() -> None:
    assert one([{"remove": "properties.x"}], track(properties={"x": 1})) == track(properties={})


def test_remove_of_nothing_changes_nothing() -> None:
    shaped = apply([{"remove": ["properties.x", "properties.y*"]}], track())
    assert shaped.messages == [track()] and shaped.adjustments == [] and not shaped.changed


def test_keep_is_an_allowlist_within_objects() -> None:
    identify = {
        "type": "identify", "userId": "u-1",
        "traits": {"email": "a@b.c", "name": "Ada", "ssn": "1", "utm_source": "x", "age": 3},
        "context": {"ip": "1"},
    }  # fmt: skip
    out = one([{"keep": {"traits": ["email", "name", "utm_*"], "properties": ["x"]}}], identify)
    assert out["traits"] == {"email": "a@b.c", "name": "Ada", "utm_source": "x"}
    assert out["context"] == {"ip": "1"}
    assert "properties" not in out


def test_keep_of_something_not_an_object_is_an_adjustment() -> None:
    shaped = apply([{"keep": {"properties.total": ["a"]}}], track(properties={"total": 1}))
    assert shaped.adjustments == [
        "playbook rule 1: keep properties.total: a number, not an object; left as is"
    ]


# -- transform ----------------------------------------------------------------------------------

SHA_OF_A_AT_B = "fb98d44ad7501a959f3f4f4a3f004fe2d9e581ea6207e218c4b02c08a4d75adf"  # "a@b.com"


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("lower", " A@B.COM ", " a@b.com "),
        ("upper", "eur", "EUR"),
        ("trim", "  a b \n", "a b"),
        ("sha256", "a@b.com", SHA_OF_A_AT_B),
        ("sha256", 42, "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"),
        ("sha256", 19.99, "2b8216946cd1838aae12f0958b4cb6a4148b4d9d8a3019d905d825cb785f7342"),
        (["trim", "lower", "sha256"], "  A@B.com ", SHA_OF_A_AT_B),
        ("to_number", "42", 42),
        ("to_number", " -19.90 ", -19.9),
        ("to_number", "1e3", 1000.0),
        ("to_number", 7, 7),
        ("to_string", 42, "42"),
        ("to_string", 1.5, "1.5"),
        ("to_string", True, "true"),
        ("to_string", "x", "x"),
        ("to_bool", "Yes", True),
        ("to_bool", "0", False),
        ("to_bool", "off", False),
        ("to_bool", 1, True),
        ("to_bool", False, False),
        ("unix_seconds", "2026-11-28T10:00:00.900Z", 1795860000),
        ("unix_seconds", "2026-11-28T11:00:00+01:00", 1795860000),
        ("unix_seconds", "2026-11-28", 1795824000),
        ("truncate:3", "abcdef", "abc"),
        ("truncate:10", "abc", "abc"),
        ("truncate:0", "abc", ""),
    ],
)
def test_transform(spec: Any, value: Any, expected: Any) -> None:
    out = one([{"transform": {"properties.v": spec}}], track(properties={"v": value}))
    assert out["properties"]["v"] == expected
    assert type(out["properties"]["v"]) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "why"),
    [
        ("lower", 5, "a number, not a string (lower takes strings)"),
        ("trim", None, "null, not a string (trim takes strings)"),
        ("sha256", True, "a boolean, not a string or a number (sha256 takes those)"),
        ("sha256", {"a": 1}, "an object, not a string or a number (sha256 takes those)"),
        ("to_number", "12abc", "'12abc' is not a number"),
        ("to_number", "nan", "'nan' is not a number"),
        ("to_number", [1], "a list, not a string or a number (to_number takes those)"),
        ("to_string", None, "null (to_string takes strings, numbers and booleans)"),
        ("to_bool", "maybe", "'maybe' is not a yes/no value"),
        ("to_bool", 2, "'2' is not a yes/no value (numbers: 1 or 0)"),
        ("to_bool", [], "a list, not a yes/no value"),
        ("unix_seconds", "yesterday", "'yesterday' is not an ISO-8601 date-time"),
        ("unix_seconds", 1700000000, "a number, not a string (unix_seconds takes strings)"),
        ("truncate:2", 12345, "a number, not a string (truncate takes strings)"),
        (["trim", "to_number"], " x ", "'x' is not a number"),
    ],
)
def test_transform_that_cannot_apply_leaves_the_field(spec: Any, value: Any, why: str) -> None:
    shaped = apply([{"transform": {"properties.v": spec}}], track(properties={"v": value}))
    assert shaped.messages == [track(properties={"v": value})]
    names = ", ".join(spec) if isinstance(spec, list) else spec
    assert shaped.adjustments == [
        f"playbook rule 1: transform properties.v ({names}): {why}; left as is"
    ]
    assert shaped.changed is False


def test_transform_of_a_missing_field_is_an_adjustment_and_the_rule_goes_on() -> None:
    identify = {"type": "identify", "userId": "u-1", "traits": {"email": "A@B.COM", "ssn": "1"}}
    shaped = apply(
        [{"remove": ["traits.ssn"], "transform": {"traits.phone": "sha256", "traits.email":
                                                  "lower"}}], identify,
    )  # fmt: skip
    assert shaped.messages == [{"type": "identify", "userId": "u-1", "traits": {"email":
                                                                                 "a@b.com"}}]
    assert shaped.adjustments == [
        "playbook rule 1: transform traits.phone (sha256): missing; left as is"
    ]


# -- sample -------------------------------------------------------------------------------------


def people(count: int) -> list[dict[str, Any]]:
    return [track(userId=f"user-{i}") for i in range(count)]


def kept(playbook: Playbook, messages: list[dict[str, Any]]) -> set[str]:
    return {
        message["userId"]
        for message in messages
        if playbook.apply(dict(message)).messages
    }


def test_sample_keeps_a_fraction_of_people_stably() -> None:
    rules = [{"when": 'event = "Order Completed"', "sample": 0.25}]
    crowd = people(2000)
    chosen = kept(Playbook.compile(rules), crowd)
    assert 400 <= len(chosen) <= 600  # a fair hash: 25% give or take
    assert kept(Playbook.compile(rules), crowd) == chosen  # the same people every time
    bigger = kept(Playbook.compile([{**rules[0], "sample": 0.5}]), crowd)
    assert chosen < bigger  # growing the fraction only adds people


def test_sample_reason_and_person_key() -> None:
    playbook = Playbook.compile([{"sample": 0}])
    assert playbook.apply(track()).filtered == "playbook rule 1: sampled out (sample = 0)"
    everyone = Playbook.compile([{"sample": 1}])
    assert all(everyone.apply(message).messages for message in people(100))
    half = Playbook.compile([{"sample": 0.5}])
    anonymous = [{"type": "track", "event": "e", "anonymousId": f"a-{i}"} for i in range(200)]
    decided = [bool(half.apply(dict(m)).messages) for m in anonymous]
    assert decided == [bool(half.apply(dict(m)).messages) for m in anonymous]
    assert 60 <= sum(decided) <= 140


def test_named_sampling_rules_keep_their_people_when_reordered() -> None:
    sampled = {"name": "noisy", "sample": 0.3}
    other = {"set": {"properties.x": 1}}
    crowd = people(500)
    first = kept(Playbook.compile([sampled, other]), crowd)
    assert kept(Playbook.compile([other, sampled]), crowd) == first


# -- order of actions ---------------------------------------------------------------------------


def test_actions_run_in_the_documented_order_whatever_the_order_written() -> None:
    rule: dict[str, Any] = {
        "transform": {"properties.revenue": "to_string"},  # after copy: the copy is changed
        "remove": ["properties.total"],  # after copy and move
        "copy": {"properties.revenue": "properties.total"},  # after set: copies the set value
        "set": {"properties.total": 100},
        "move": {"properties.amount": "properties.revenue"},  # after copy: moves the copy
        "rename_event": "Purchase",
        "keep": {"properties": ["amount", "revenue", "total"]},  # after move: keeps amount
        "when": 'event = "Order Completed"',  # before rename_event
    }
    out = one([rule], track(properties={"total": 9, "other": 1}))
    assert out == track(event="Purchase", properties={"amount": 100})


def test_later_rules_see_earlier_rules_changes() -> None:
    rules: list[dict[str, Any]] = [
        {"when": 'event = "Order Completed"', "rename_event": "Purchase"},
        {"when": 'event = "Purchase"', "set": {"properties.seen": True}},
    ]
    out = one(rules, track())
    assert out == track(event="Purchase", properties={"seen": True})


def test_unchanged_message_is_the_input_itself() -> None:
    message = track()
    shaped = apply([{"when": 'event = "Other"', "drop": True}], message)
    assert shaped.messages[0] is message and shaped.changed is False


def test_apply_never_changes_its_input() -> None:
    shared = {"items": [{"sku": "a", "internal_x": 1}], "email": "A@B.COM", "n": "4"}
    message = track(properties=shared, traits=shared, context={"page": {"url": "u", "ip": "1"}})
    before = copy.deepcopy(message)
    rules = [{
        "set": {"properties.items.0.sku": "b", "context.page.title": "t"},
        "move": {"traits.mail": "traits.email"},
        "remove": ["properties.items.0.internal_*", "context.page.ip"],
        "keep": {"traits": ["mail", "n"]},
        "transform": {"traits.n": "to_number", "properties.email": "lower"},
    }]  # fmt: skip
    out = one(rules, message)
    assert message == before
    assert out["properties"] == {"items": [{"sku": "b"}], "email": "a@b.com", "n": "4"}
    assert out["traits"] == {"n": 4, "mail": "A@B.COM"}
    assert out["context"] == {"page": {"url": "u", "title": "t"}}


def test_empty_playbook() -> None:
    playbook = Playbook.compile([])
    assert playbook.is_empty
    message = track()
    assert playbook.apply(message) == Shaped(messages=[message])
    assert not Playbook.compile([], consent=["marketing"]).is_empty


# -- functions ----------------------------------------------------------------------------------

FUNCTIONS = '''
def tag(message):
    message.setdefault("properties", {})["tagged"] = True
    return message

def nothing(message):
    return None

def split(message):
    total = message["properties"]["total"]
    first = dict(message, event="Order Completed", properties={"total": total})
    second = dict(message, event="Revenue", properties={"amount": total})
    return [first, second]

def same_twice(message):
    return [message, message]

def boom(message):
    return message["properties"]["missing"]

def wrong(message):
    return "text"
'''


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "shop.py").write_text(FUNCTIONS)
    return tmp_path


def with_function(name: str, base: Path, *after: dict[str, Any]) -> Playbook:
    rules = [{"when": 'type = "track"', "function": f"functions/shop.py:{name}"}, *after]
    return Playbook.compile(rules, base_dir=base, allow_functions=True)


def test_function_changes_the_message(functions_dir: Path) -> None:
    shaped = with_function("tag", functions_dir).apply(track())
    assert shaped.messages == [track(properties={"tagged": True})] and shaped.changed


def test_function_returning_none_drops(functions_dir: Path) -> None:
    shaped = with_function("nothing", functions_dir).apply(track())
    assert shaped == Shaped(
        messages=[], filtered="playbook rule 1: function functions/shop.py:nothing dropped it",
        rules_applied=["rule 1"], changed=True, fields=None,
    )  # fmt: skip


def test_function_splits_a_message_and_later_rules_apply_to_each(functions_dir: Path) -> None:
    playbook = with_function(
        "split", functions_dir,
        {"when": 'event = "Revenue"', "set": {"properties.currency": "USD"}},
        {"when": 'event = "Order Completed"', "drop": True},
    )  # fmt: skip
    shaped = playbook.apply(track(properties={"total": 9}))
    assert shaped.messages == [
        track(event="Revenue", properties={"amount": 9, "currency": "USD"})
    ]
    assert shaped.filtered is None
    assert shaped.rules_applied == ["rule 1", "rule 3", "rule 2"]
    assert shaped.adjustments == ["playbook rule 3: drop (one of the split messages)"]


def test_split_messages_are_independent(functions_dir: Path) -> None:
    playbook = with_function("same_twice", functions_dir, {"set": {"properties.x": 1}})
    first, second = playbook.apply(track()).messages
    assert first is not second and first == second == track(properties={"x": 1})


def test_function_exception_is_a_dead_letter_with_its_traceback(functions_dir: Path) -> None:
    shaped = with_function("boom", functions_dir).apply(track(properties={}))
    assert shaped.messages == [] and shaped.filtered is None
    assert shaped.error is not None
    lines = shaped.error.splitlines()
    assert lines[0] == "playbook rule 1: function functions/shop.py:boom raised:"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].endswith('shop.py", line 19, in boom')  # the user's frame, not the engine's
    assert lines[-1] == "KeyError: 'missing'"


def test_function_returning_something_else_is_an_error(functions_dir: Path) -> None:
    shaped = with_function("wrong", functions_dir).apply(track())
    assert shaped.error == (
        "playbook rule 1: function functions/shop.py:wrong returned a string; expected the "
        "message (a dict), None (drop) or a list of messages"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("functions/shop.py:absent", "has no 'absent'"),
        ("functions/none.py:tag", "no file "),
        ("functions/shop.py", "expected \"path/to/file.py:function_name\", got "
         "'functions/shop.py'"),
        ("turnout.playbooks:apply", "'turnout.playbooks' is not a .py file (functions are "
         "loaded from files)"),
    ],
)
def test_function_that_cannot_load(functions_dir: Path, spec: str, message: str) -> None:
    error = compile_error([{"function": spec}], base_dir=functions_dir, allow_functions=True)
    assert (error.rule, error.field) == (1, "function")
    assert message in error.message


def test_function_file_with_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def f(message):\n    return (\n")
    error = compile_error([{"function": "bad.py:f"}], base_dir=tmp_path, allow_functions=True)
    assert error.message.splitlines() == [
        f"loading {tmp_path / 'bad.py'} failed:",
        f'  File "{tmp_path / "bad.py"}", line 2',
        "    return (",
        "           ^",
        "SyntaxError: '(' was never closed",
    ]


def test_functions_are_refused_where_not_allowed(functions_dir: Path) -> None:
    error = compile_error([{"function": "functions/shop.py:tag"}], base_dir=functions_dir)
    assert str(error) == (
        "playbook rule 1, function: functions may only be named in the configuration file's "
        "playbooks"
    )
    error = compile_error([{"function": "functions/shop.py:tag"}], allow_functions=True)
    assert error.message == "no directory to load the function's file from"


# -- invalid playbooks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "text"),
    [
        ("drop", "playbook: a playbook is a list of rules, got str"),
        (["drop"], "playbook rule 1: a rule is a table of actions, got a string"),
        ([{"when": 'type = "track"'}], "playbook rule 1: the rule has no action (one of: drop, "
         "rename_event, set, copy, move, remove, keep, transform, sample, function)"),
        ([{"drop": True}, {"filter": True}], "playbook rule 2, filter: unknown key 'filter' (a "
         "rule has: name, when, drop, rename_event, set, copy, move, remove, keep, transform, "
         "sample, function)"),
        ([{"drop": "yes"}], "playbook rule 1, drop: drop is true or false, got a string"),
        ([{"drop": True, "set": {"a": 1}, "remove": ["b"]}], "playbook rule 1, drop: drop = true "
         "ends the rule, so set, remove would never run: move them to another rule"),
        ([{"rename_event": ""}], "playbook rule 1, rename_event: rename_event is a non-empty "
         "string, got ''"),
        ([{"set": ["a"]}], 'playbook rule 1, set: set is a table: set = { "properties.currency" '
         '= "USD" }'),
        ([{"set": {"properties..x": 1}}], 'playbook rule 1, set "properties..x": path '
         "'properties..x' has an empty part (two dots, or a dot at an end)"),
        ([{"set": {"properties.x": None}}], 'playbook rule 1, set "properties.x": null is not a '
         "TOML value: use remove (a playbook holds TOML values)"),
        ([{"set": {"properties.*": 1}}], "playbook rule 1, set \"properties.*\": path "
         "'properties.*': wildcards (*, ?, [) are allowed not in this path"),
        ([{"set": {"messageId": "x"}}], 'playbook rule 1, set "messageId": messageId cannot be '
         "changed by a playbook (the call's type and messageId decide how it is delivered)"),
        ([{"move": {"properties.type": "type"}}], 'playbook rule 1, move "properties.type": type '
         "cannot be changed by a playbook (the call's type and messageId decide how it is "
         "delivered)"),
        ([{"copy": {"properties.a": "properties.a"}}], 'playbook rule 1, copy "properties.a": '
         "copy to the same path"),
        ([{"move": {"traits.old": "traits"}}], 'playbook rule 1, move "traits.old": move between '
         "a field and a field inside it"),
        ([{"copy": {"properties.a": 3}}], 'playbook rule 1, copy "properties.a": a path must be '
         "a string, got int"),
        ([{"remove": []}], 'playbook rule 1, remove: remove is a list of paths: remove = '
         '["traits.ssn"]'),
        ([{"remove": ["*"]}], 'playbook rule 1, remove "*": * cannot be changed by a playbook '
         "(the call's type and messageId decide how it is delivered)"),
        ([{"keep": ["traits.email"]}], 'playbook rule 1, keep: keep is a table: keep = { '
         '"traits" = ["email", "name"] }'),
        ([{"keep": {"traits": "email"}}], 'playbook rule 1, keep "traits": keep lists the names '
         'to keep: keep = { "traits" = ["email", "name"] }'),
        ([{"transform": {"traits.email": "sha1"}}], 'playbook rule 1, transform "traits.email": '
         "unknown transform 'sha1' (expected one of: lower, upper, trim, sha256, to_number, "
         "to_string, to_bool, unix_seconds, truncate:N)"),
        ([{"transform": {"traits.email": "truncate:x"}}], 'playbook rule 1, transform '
         "\"traits.email\": 'truncate:x': truncate needs a length, as in truncate:40"),
        ([{"transform": {"traits.email": []}}], 'playbook rule 1, transform "traits.email": an '
         "empty list of transforms"),
        ([{"sample": 1.5}], "playbook rule 1, sample: sample is a fraction from 0 to 1 (0.1 keeps "
         "10%), got 1.5"),
        ([{"sample": True}], "playbook rule 1, sample: sample is a fraction from 0 to 1 (0.1 "
         "keeps 10%), got True"),
        ([{"name": "a", "drop": True}, {"name": "a", "drop": True}], "playbook rule 2, name: the "
         "name 'a' is already rule 1's"),
    ],
)
def test_invalid_playbook_is_located(rules: Any, text: str) -> None:
    assert str(compile_error(rules)) == text


@pytest.mark.parametrize(
    ("consent", "missing", "text"),
    [
        ("marketing", "deliver", 'playbook, consent: a list of category names (consent = '
         '["marketing"]), got a string'),
        ([""], "deliver", "playbook, consent: each category is a non-empty string, got ''"),
        (["marketing"], "allow", 'playbook, consent_missing: "deliver" or "drop", got \'allow\''),
    ],
)
def test_invalid_consent_settings(consent: Any, missing: str, text: str) -> None:
    assert str(compile_error([], consent=consent, consent_missing=missing)) == text


# -- canonical TOML and diffs -------------------------------------------------------------------

RULES: list[dict[str, Any]] = [
    {"when": 'type = "track" and event = "Test Event"', "drop": True},
    {"name": "PII", "transform": {"traits.email": ["trim", "lower"], "traits.phone": "sha256"},
     "remove": ["traits.ssn"], "when": 'type = "identify"'},
    {"set": {"properties.env": "prod", "properties.n": 1.5, "properties.o": {"a": [1, True]}},
     "sample": 0.5},
]  # fmt: skip


def test_canonical_toml_is_readable_and_reads_back_the_same() -> None:
    text = canonical_toml(RULES)
    assert text == (
        "[[playbook]]\n"
        "when = 'type = \"track\" and event = \"Test Event\"'\n"
        "drop = true\n"
        "\n"
        "[[playbook]]\n"
        'name = "PII"\n'
        "when = 'type = \"identify\"'\n"
        'remove = ["traits.ssn"]\n'
        "[playbook.transform]\n"
        '"traits.email" = ["trim", "lower"]\n'
        '"traits.phone" = "sha256"\n'
        "\n"
        "[[playbook]]\n"
        "sample = 0.5\n"
        "[playbook.set]\n"
        '"properties.env" = "prod"\n'
        '"properties.n" = 1.5\n'
        '"properties.o" = { a = [1, true] }\n'
    )
    assert tomllib.loads(text)["playbook"] == RULES
    config = canonical_toml(RULES, table="connections.playbook")
    assert tomllib.loads(config)["connections"]["playbook"] == RULES


def test_describe_diff() -> None:
    new = [RULES[0], {**RULES[1], "transform": {"traits.email": "lower"}}, RULES[2]]
    assert describe_diff(RULES, RULES) == ""
    assert describe_diff(RULES, new, "revision 3", "revision 4") == (
        "--- revision 3\n"
        "+++ revision 4\n"
        "@@ -7,8 +7,7 @@\n"
        " when = 'type = \"identify\"'\n"
        ' remove = ["traits.ssn"]\n'
        " [playbook.transform]\n"
        '-"traits.email" = ["trim", "lower"]\n'
        '-"traits.phone" = "sha256"\n'
        '+"traits.email" = "lower"\n'
        " \n"
        " [[playbook]]\n"
        " sample = 0.5\n"
    )


def test_compiled_playbook_keeps_its_source() -> None:
    playbook = Playbook.compile(RULES, consent=["marketing"], consent_missing="drop")
    assert (playbook.rules, playbook.consent, playbook.consent_missing) == (
        RULES, ["marketing"], "drop"
    )
