"""Whatever the message and the playbook, the engine answers: a valid playbook applied to any
message never raises, and anything invalid is a PlaybookError that says where."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from turnout.playbooks import (
    Playbook,
    PlaybookError,
    Shaped,
    as_dict,
    as_message,
    compile_condition,
)
from turnout.playbooks.conditions import ConditionError, compile_when
from turnout.spec.message import Message

EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

# A small vocabulary, so that generated paths and generated messages meet often.
KEYS = ["a", "email", "0", "1", "x.y", "internal_id"]
OBJECTS = ["properties", "traits", "context"]
TOP = ["event", "userId", "anonymousId"]

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["2026-11-28T10:00:00Z", "42", " Yes ", "A@B.c"])
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
        | st.dictionaries(st.text(max_size=4), children, max_size=2)
    ),
    max_leaves=12,
)
# What a path meets: an object most often, but also a list or a scalar where an object belongs.
objects = (
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)
    | st.lists(json_values, max_size=2)
    | scalars
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]),
     "messageId": st.text(min_size=1, max_size=8),
     "properties": objects,
     "traits": objects},
    optional={
        **{key: json_values | st.sampled_from(["u-1", "Order Completed", "Test Event"])
           for key in TOP},
        "context": st.dictionaries(
            st.sampled_from(["consent", "consentManagement", "ip", "page", *KEYS]), json_values,
            max_size=4,
        ),
    },
)  # fmt: skip


def _escape(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


keys = st.sampled_from([_escape(key) for key in KEYS])
# Paths that meet generated messages: list items, values under scalars, whole objects...
paths = st.sampled_from([
    "properties.a", "properties.0", "properties.1", "traits.email", "traits.a.0", "context.x\\.y",
    "properties.a.email", "properties", "userId", "event", "anonymousId.a",
]) | st.builds(
    lambda top, rest: ".".join([top, *rest]),
    st.sampled_from(OBJECTS + TOP),
    st.lists(keys, max_size=3),
)  # fmt: skip
read_paths = paths | st.sampled_from(["type", "messageId"])
glob_paths = st.builds(lambda obj, pattern: f"{obj}.{pattern}", st.sampled_from(OBJECTS),
                       st.sampled_from(["*", "a*", "internal_*", "?", "[ab]"]))  # fmt: skip

literals = (
    st.sampled_from(["null", "true", "false", '"track"', '"u-1"', "0", "42", "-1.5e3", '"a\\"b"'])
    | st.integers(-1000, 1000).map(str)
)
comparators = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
call_types = st.sampled_from(["track", "identify", "page", "group"])
atoms = (
    st.builds(lambda t: f'type = "{t}"', call_types)
    | st.builds(lambda t: f'"{t}" = type', call_types)
    | st.builds(lambda p, op, lit: f"{p} {op} {lit}", read_paths, comparators, literals)
    | st.builds(lambda lit, op, p: f"{lit} {op} {p}", literals, comparators, read_paths)
    | st.builds(lambda p, op, q: f"{p}{op}{q}", read_paths, comparators, read_paths)
    | st.builds(lambda p: f"exists({p})", read_paths)
    | st.builds(lambda p, t: f'contains({p}, "{t}")', read_paths, st.sampled_from(["a", "", "u"]))
    | st.builds(lambda p, g: f'match({p}, "{g}")', read_paths, st.sampled_from(["*", "u-?"]))
)
conditions = st.recursive(
    atoms,
    lambda inner: (
        st.builds(lambda a, b: f"{a} and {b}", inner, inner)
        | st.builds(lambda a, b: f"{a} or {b}", inner, inner)
        | st.builds(lambda a: f"not {a}", inner)
        | st.builds(lambda a: f"({a})", inner)
    ),
    max_leaves=6,
)
transform_names = st.sampled_from(
    ["lower", "upper", "trim", "sha256", "to_number", "to_string", "to_bool", "unix_seconds",
     "truncate:0", "truncate:5"]
)  # fmt: skip
toml_values = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)  # fmt: skip


def _distinct(pair: tuple[str, str]) -> bool:
    target, source = (p.split(".") for p in pair)
    shorter = min(len(target), len(source))
    return target[:shorter] != source[:shorter]  # neither is the other, nor inside it


pairs = st.tuples(paths, paths).filter(_distinct)
FUNCTION_NAMES = ["same", "split", "nothing", "boom", "tag"]
ACTIONS: dict[str, st.SearchStrategy[Any]] = {
    "rename_event": st.sampled_from(["Purchase", "Renamed"]),
    "set": st.dictionaries(paths, toml_values, min_size=1, max_size=3),
    "copy": st.lists(pairs, max_size=3).map(dict),
    "move": st.lists(pairs, max_size=3).map(dict),
    "remove": st.lists(paths | glob_paths, min_size=1, max_size=3),
    "keep": st.dictionaries(
        paths, st.lists(st.sampled_from(["a", "email", "*_id", "t?tal"]), max_size=3), max_size=2
    ),
    "transform": st.dictionaries(
        paths, transform_names | st.lists(transform_names, min_size=1, max_size=3), max_size=3
    ),
    "sample": st.floats(0, 1),
}
actions = st.fixed_dictionaries({}, optional=ACTIONS)


@st.composite
def rules(draw: st.DrawFn, functions: bool = False) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["when"] = draw(conditions)
    if draw(st.integers(0, 5)) == 0:
        rule["drop"] = True
        return rule
    rule.update(draw(actions))
    if functions and draw(st.integers(0, 3)) == 0:
        rule["function"] = f"playbook_functions.py:{draw(st.sampled_from(FUNCTION_NAMES))}"
    if not any(key in rule for key in ("rename_event", "set", "copy", "move", "remove", "keep",
                                       "transform", "sample", "function")):
        rule["drop"] = False
    return rule


@st.composite
def playbooks(draw: st.DrawFn, functions: bool = False) -> list[dict[str, Any]]:
    drawn = draw(st.lists(rules(functions), max_size=4))
    for number, rule in enumerate(drawn):
        if draw(st.booleans()):
            rule["name"] = f"rule-{number}"
    return drawn


consents = st.lists(st.sampled_from(["marketing", "analytics", "a"]), max_size=2)



def check_outcome(shaped: Shaped, rules: list[dict[str, Any]]) -> None:
    assert isinstance(shaped, Shaped)
    assert shaped.error is None or "engine error" not in shaped.error, shaped.error
    if shaped.error is not None:
        assert shaped.messages == [] and any("function" in rule for rule in rules)
    elif not shaped.messages:
        assert isinstance(shaped.filtered, str) and shaped.filtered
    else:
        assert shaped.filtered is None
    for message in shaped.messages:
        assert isinstance(message, dict)
        msgspec.json.encode(message)  # still JSON: what a lane can store and send
    assert all(isinstance(text, str) for text in shaped.rules_applied + shaped.adjustments)


@FUZZ
@given(rules=playbooks(), consent=consents, missing=st.sampled_from(["deliver", "drop"]),
       message=messages)  # fmt: skip
def test_any_message_through_any_valid_playbook(
    rules: list[dict[str, Any]], consent: list[str], missing: str, message: dict[str, Any]
) -> None:
    playbook = Playbook.compile(rules, consent=consent, consent_missing=missing)
    original = msgspec.json.decode(msgspec.json.encode(message))
    shaped = playbook.apply(message)
    check_outcome(shaped, rules)
    assert message == original  # the input is never changed: the run copies what it changes
    for out in shaped.messages:  # what identifies the call never changes
        assert (out["type"], out["messageId"]) == (original["type"], original["messageId"])
    if not shaped.changed and shaped.messages:
        assert shaped.messages == [original]


texts = st.sampled_from(["u-1", "Order Completed", "a@b.c"]) | st.text(max_size=6)
stored_messages = st.builds(
    lambda fields: msgspec.convert(
        {"messageId": "m-1", "receivedAt": "2026-11-28T10:00:00.000Z",
         "timestamp": "2026-11-28T10:00:00.000Z", **fields},
        Message,
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["track", "identify", "page", "group"])},
        optional={
            **{key: texts for key in TOP},
            **{key: st.dictionaries(st.sampled_from(KEYS), json_values, min_size=2, max_size=6)
               for key in OBJECTS},
        },
    ),
)  # fmt: skip


# One action per rule, every rule applying: each field a rule changes must show in the outcome.
single_actions = st.sampled_from(
    ["rename_event", "set", "copy", "move", "remove", "keep", "transform"]
).flatmap(lambda key: ACTIONS[key].map(lambda value: {key: value}))


@FUZZ
@given(rules=st.lists(single_actions, min_size=1, max_size=3) | playbooks(),
       original=stored_messages)  # fmt: skip
def test_shaped_messages_convert_back_as_a_full_conversion_would(
    rules: list[dict[str, Any]], original: Message
) -> None:
    """`Shaped.fields` names every top-level field a playbook changed: converting back only
    those gives what validating the whole message gives."""
    shaped = Playbook.compile(rules).apply(as_dict(original))
    for out in shaped.messages:
        try:
            full: Message | str = msgspec.convert(out, Message)
        except msgspec.ValidationError as exc:
            full = str(exc)
        try:
            quick: Message | str = as_message(out, original, shaped.fields)
        except msgspec.ValidationError as exc:
            quick = str(exc)
        assert quick == full


@FUZZ
@given(condition=conditions, message=messages)
def test_type_prefilter_agrees_with_the_condition(condition: str, message: dict[str, Any]) -> None:
    types, rest = compile_when(condition)
    kind = message.get("type")
    split = (types is None or kind in types) and (rest is None or rest(message))
    assert split == compile_condition(condition)(message)


@FUZZ
@given(rules=playbooks(functions=True), message=messages)
def test_functions_never_make_the_engine_raise(
    functions_dir: Path, rules: list[dict[str, Any]], message: dict[str, Any]
) -> None:
    playbook = Playbook.compile(rules, base_dir=functions_dir, allow_functions=True)
    original = msgspec.json.decode(msgspec.json.encode(message))
    check_outcome(playbook.apply(message), rules)
    assert message == original


# -- invalid playbooks --------------------------------------------------------------------------

broken_conditions = st.builds(
    lambda condition, damage: damage(condition),
    conditions,
    st.sampled_from([
        lambda c: c + " and",
        lambda c: "(" + c,
        lambda c: c + ")",
        lambda c: c.replace("=", "==", 1) if "=" in c else c + " ~",
        lambda c: c + ' = "',
        lambda c: "not",
        lambda c: c.replace("(", "", 1) if "(" in c else c + " or or",
        lambda c: c + " x",
    ]),
)  # fmt: skip
DEFECTS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("set", st.builds(lambda p: {p + "..": 1}, paths)),
    ("set", st.builds(lambda p: {p: None}, paths)),
    ("set", st.just({"messageId": "x"})),
    ("copy", st.builds(lambda p: {p: p}, paths)),
    ("move", st.just({"traits.a": "traits"})),
    ("remove", st.sampled_from([[], [""], ["type"], ["properties.a*.b"], [3]])),
    ("keep", st.sampled_from([["traits"], {"traits": "email"}, {"type": ["a"]}])),
    ("transform", st.builds(lambda p, t: {p: t}, paths,
                            st.sampled_from(["sha1", "truncate", "truncate:-1", "", [], 3]))),
    ("sample", st.sampled_from([-0.1, 1.5, "0.5", True, float("nan"), None])),
    ("drop", st.sampled_from(["yes", 1, None])),
    ("rename_event", st.sampled_from(["", 3, None])),
    ("function", st.just("playbook_functions.py:same")),
    ("name", st.sampled_from(["", 3])),
    ("filter", st.just(True)),
    ("when", st.integers() | st.none()),
]


@FUZZ
@given(rules=playbooks(), data=st.data())
def test_invalid_rule_is_located(rules: list[dict[str, Any]], data: st.DataObject) -> None:
    rules = rules or [{"drop": True}]
    index = data.draw(st.integers(0, len(rules) - 1))
    field, values = data.draw(st.sampled_from(DEFECTS))
    rules[index] = {**rules[index], field: data.draw(values)}
    try:
        Playbook.compile(rules, base_dir=Path("."), allow_functions=False)
    except PlaybookError as error:
        assert (error.rule, error.field) == (index + 1, field), error
        assert error.message and str(error).startswith(f"playbook rule {index + 1}, {field}")
    else:
        raise AssertionError(f"accepted: {rules[index]}")


@FUZZ
@given(count=st.integers(1, 4), data=st.data(), condition=broken_conditions)
def test_invalid_condition_is_located(count: int, data: st.DataObject, condition: str) -> None:
    try:
        compile_condition(condition)
    except ConditionError:
        pass
    else:
        assume(False)  # the damage happened to leave a valid condition
    rules: list[dict[str, Any]] = [{"when": 'type = "track"', "drop": True}] * count
    index = data.draw(st.integers(0, count - 1))
    rules[index] = {**rules[index], "when": condition}
    try:
        Playbook.compile(rules)
    except PlaybookError as error:
        assert (error.rule, error.field) == (index + 1, "when")
        assert error.line is not None and error.column is not None
        assert 1 <= error.line <= condition.count("\n") + 1
        assert 1 <= error.column <= len(condition) + 1
    else:
        raise AssertionError(f"accepted: {condition!r}")


@FUZZ
@given(text=st.text(max_size=60) | conditions.map(lambda c: c[: len(c) // 2]))
def test_any_text_as_a_condition_compiles_or_is_located(text: str) -> None:
    try:
        Playbook.compile([{"when": text, "drop": True}])
    except PlaybookError as error:
        assert (error.rule, error.field) == (1, "when")
        assert error.line is not None and error.column is not None


@FUZZ
@given(rules=json_values, consent=json_values)
def test_any_json_as_a_playbook_compiles_or_is_located(rules: Any, consent: Any) -> None:
    try:
        Playbook.compile(rules, consent=consent if isinstance(consent, list) else [])
    except PlaybookError as error:
        assert error.message
        assert error.rule is not None or error.field in (None, "consent")
