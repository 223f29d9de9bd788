"""`Playbook.shape(message)`, what a lane calls, builds only the top-level fields the rules for
the message's type read or write: whatever the playbook, it must come to exactly what
`apply(as_dict(message))` comes to, down to the typed messages delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_playbook_fuzz import FUZZ, consents, messages, playbooks, stored_messages

from turnout.playbooks import Playbook, Shaped, as_dict, as_message
from turnout.spec.message import Message


def typed(outcome: Shaped, original: Message) -> list[Message | str]:
    """Each message delivered, as the lane converts it (or why it cannot be)."""
    found: list[Message | str] = []
    for out in outcome.messages:
        try:
            found.append(as_message(out, original, outcome.fields) if outcome.changed else original)
        except msgspec.ValidationError as exc:
            found.append(str(exc))
    return found


def assert_same(playbook: Playbook, message: Message) -> Shaped:
    whole = playbook.apply(as_dict(message))
    shaped = playbook.shape(message)
    assert shaped.filtered == whole.filtered
    assert shaped.rules_applied == whole.rules_applied
    assert shaped.adjustments == whole.adjustments
    assert shaped.error == whole.error
    assert shaped.changed == whole.changed
    assert shaped.fields == whole.fields
    assert typed(shaped, message) == typed(whole, message)
    assert whole.typed is None  # `apply` has no typed message to start from
    if shaped.fields is not None and len(shaped.messages) == 1:
        # `shape` made the typed message itself, exactly when the conversion succeeds.
        [expected] = typed(whole, message)
        assert shaped.typed == (expected if isinstance(expected, Message) else None)
        if not shaped.changed:
            assert shaped.typed is message
    else:  # filtered, failed, or a function ran: the lane converts (or has nothing to)
        assert shaped.typed is None
    return shaped


def _as_stored(message: dict[str, Any]) -> Message | None:
    try:
        return msgspec.convert(
            {"receivedAt": "2026-11-28T10:00:00.000Z", "timestamp": "2026-11-28T10:00:00.000Z",
             **message},
            Message,
        )  # fmt: skip
    except msgspec.ValidationError:
        return None


# Calls with consent in their context, and calls as ingest stores them.
typed_messages = messages.map(_as_stored).filter(lambda m: m is not None) | stored_messages


@FUZZ
@given(rules=playbooks(), consent=consents, missing=st.sampled_from(["deliver", "drop"]),
       message=typed_messages)  # fmt: skip
def test_shape_comes_to_what_apply_comes_to(
    rules: list[dict[str, Any]], consent: list[str], missing: str, message: Message
) -> None:
    assert_same(Playbook.compile(rules, consent=consent, consent_missing=missing), message)


@FUZZ
@given(rules=playbooks(functions=True), message=typed_messages)
def test_shape_with_functions_comes_to_what_apply_comes_to(
    functions_dir: Path, rules: list[dict[str, Any]], message: Message
) -> None:
    assume(any("function" in rule for rule in rules))
    playbook = Playbook.compile(rules, base_dir=functions_dir, allow_functions=True)
    assert_same(playbook, message)


MESSAGE = msgspec.convert(
    {"type": "track", "messageId": "m-1", "receivedAt": "2026-11-28T10:00:00.000Z",
     "timestamp": "2026-11-28T10:00:00.000Z", "userId": "u-1", "event": "Viewed",
     "name": "Home", "integrations": {"All": True}, "source": "web",
     "properties": {"a": 1}, "context": {"ip": "203.0.113.7"}},
    Message,
)  # fmt: skip


def test_fields_outside_the_usual_ones_are_read_and_written() -> None:
    """Every top-level field a rule names is in the dict `shape` builds: conditions on them,
    writes to them, copies from them, and a field no message has, written then read."""
    playbook = Playbook.compile([
        {"when": 'source = "web" and name = "Home" and messageId = "m-1"',
         "copy": {"properties.page": "name"}, "set": {"scratch": "x"}},
        {"when": 'scratch = "x" and exists(integrations.All)', "remove": ["integrations"],
         "set": {"properties.seen": True}},
        {"when": 'exists(sentAt)', "drop": True},
    ])  # fmt: skip
    shaped = assert_same(playbook, MESSAGE)
    assert shaped.rules_applied == ["rule 1", "rule 2"]
    [out] = typed(shaped, MESSAGE)
    assert out == msgspec.structs.replace(
        MESSAGE, properties={"a": 1, "page": "Home", "seen": True}, integrations={}
    )


def test_shape_builds_only_the_fields_the_rules_touch(functions_dir: Path) -> None:
    """The point of `shape`: a track call's dict holds the fields the track rules and consent
    touch, not the whole call (here not `messageId`, `name`, `integrations`, `source`...); a
    function is handed the whole call."""
    playbook = Playbook.compile(
        [{"when": 'type = "track"', "set": {"properties.b": 2}},
         {"when": 'type = "identify"', "remove": ["traits.ssn"]}],
        consent=["marketing"],
    )  # fmt: skip
    shaped = assert_same(playbook, MESSAGE)
    assert list(shaped.messages[0]) == ["type", "properties", "context"]
    everything = Playbook.compile(
        [{"when": 'type = "track"', "function": "playbook_functions.py:same"}],
        base_dir=functions_dir, allow_functions=True,
    )  # fmt: skip
    assert list(assert_same(everything, MESSAGE).messages[0]) == list(as_dict(MESSAGE))


def test_sampling_reads_the_person_in_both() -> None:
    """A sampling rule names no path but reads the person's ids: `shape` must build them."""
    playbook = Playbook.compile([{"when": 'event = "Viewed"', "sample": 0.5}])
    kept = 0
    for number in range(40):
        identified = msgspec.structs.replace(MESSAGE, user_id=f"u-{number}")
        anonymous = msgspec.structs.replace(MESSAGE, user_id=None, anonymous_id=f"a-{number}")
        kept += bool(assert_same(playbook, identified).messages)
        assert_same(playbook, anonymous)
    assert 0 < kept < 40


@pytest.mark.parametrize(
    "rule",
    [
        {"set": {"properties.b": 2}},
        {"copy": {"properties.page": "name"}},
        {"move": {"properties.page": "name"}},
        {"remove": ["context.ip"]},
        {"keep": {"properties": ["b"]}},
        {"transform": {"name": "upper"}},
        {"rename_event": "Seen"},
    ],
    ids=lambda rule: next(iter(rule)),
)
def test_each_action_has_its_fields_built(rule: dict[str, Any]) -> None:
    """The action is the only one to name its fields, and it changes the call."""
    shaped = assert_same(Playbook.compile([rule]), MESSAGE)
    assert shaped.changed
    assert typed(shaped, MESSAGE) != [MESSAGE]


def test_a_defect_writing_the_code_costs_the_call_at_hand_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    playbook = Playbook.compile([{"rename_event": "Seen"}])
    generate = Playbook._generate_shape

    def broken(self: Playbook) -> Any:
        raise RuntimeError("cannot write")

    monkeypatch.setattr(Playbook, "_generate_shape", broken)
    failed = playbook.shape(MESSAGE)
    assert failed.messages == [] and failed.error is not None
    assert failed.error.startswith("playbook engine error:\nTraceback")
    assert failed.error.endswith("RuntimeError: cannot write\n")
    monkeypatch.setattr(Playbook, "_generate_shape", generate)
    assert assert_same(playbook, MESSAGE).messages[0]["event"] == "Seen"
