"""What a lane makes of a call through a playbook and the destination's mapping: one outcome,
the playbook's notes first, then the destination's (with the real Customer.io mapping)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from turnout.delivery.shaping import map_shaped, shape_and_map
from turnout.destinations.base import MapResult
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.destinations.registry import get
from turnout.playbooks import Playbook
from turnout.spec.message import Message

CUSTOMERIO = get("customerio")
SETTINGS = CustomerIOSettings(site_id="site", api_key="key")
LONG_EVENT = "E" * 150  # past Customer.io's event name limit: cut, with an adjustment
NO_TRAITS = "playbook rule 1: transform traits.email (lower): missing; left as is"


def call(**fields: Any) -> Message:
    return msgspec.convert(
        {"type": "track", "messageId": "m-1", "receivedAt": "2026-11-28T10:00:00.000Z",
         "timestamp": "2026-11-28T10:00:00.000Z", "userId": "u-1", "event": "Viewed",
         **fields},
        Message,
    )  # fmt: skip


def run(rules: list[dict[str, Any]], message: Message, **options: Any) -> MapResult:
    """The outcome, which the lane's `map_shaped` and the preview's `shape_and_map` agree on."""
    playbook = Playbook.compile(rules, **options)
    result, shaped = map_shaped(playbook, CUSTOMERIO, SETTINGS, message)
    shaping = shape_and_map(playbook, CUSTOMERIO, SETTINGS, message)
    assert (shaping.result, shaping.shaped) == (result, shaped)
    return result


def test_unchanged_call_is_what_the_destination_makes_of_it() -> None:
    message = call(event=LONG_EVENT)
    alone = CUSTOMERIO.map(message, SETTINGS)
    assert alone.adjustments and alone.operations
    assert run([{"when": 'event = "Other"', "drop": True}], message) == alone


def test_playbook_notes_come_before_the_destinations() -> None:
    message = call(event=LONG_EVENT)
    alone = CUSTOMERIO.map(message, SETTINGS)
    result = run([{"transform": {"traits.email": "lower"}}], message)
    assert result == MapResult(
        operations=alone.operations, adjustments=[NO_TRAITS, *alone.adjustments]
    )


def test_changed_call_is_mapped_as_changed() -> None:
    result = run([{"rename_event": "Seen", "set": {"properties.plan": "pro"}}], call())
    assert result == CUSTOMERIO.map(call(event="Seen", properties={"plan": "pro"}), SETTINGS)


def test_filtered_by_the_destination_keeps_the_playbooks_notes_only() -> None:
    message = call(event=LONG_EVENT, integrations={"Customer.io": False})
    alone = CUSTOMERIO.map(message, SETTINGS)
    assert alone.filtered is not None
    result = run([{"transform": {"traits.email": "lower"}}], message)
    assert result == MapResult(filtered=alone.filtered, adjustments=[NO_TRAITS])


def test_a_call_the_playbook_made_invalid_is_rejected_naming_the_field() -> None:
    result = run([{"set": {"userId": 5}}], call())
    assert result == MapResult(
        rejected="the playbook made the call invalid: Expected `str | null`, got `int` - at "
        "`$.userId`"
    )


def test_split_calls_are_each_mapped_and_named(tmp_path: Path) -> None:
    (tmp_path / "split.py").write_text(
        "def two(message):\n"
        "    return [message, dict(message, event=message['event'] + '!')]\n"
    )
    message = call(event=LONG_EVENT)
    result = run([{"function": "split.py:two"}], message, base_dir=tmp_path,
                 allow_functions=True)  # fmt: skip
    first = CUSTOMERIO.map(message, SETTINGS)
    second = CUSTOMERIO.map(call(event=LONG_EVENT + "!"), SETTINGS)
    assert result == MapResult(
        operations=[*first.operations, *second.operations],
        adjustments=[f"split message 1 of 2: {first.adjustments[0]}",
                     f"split message 2 of 2: {second.adjustments[0]}"],
    )  # fmt: skip


def test_a_call_the_destination_rejects_is_rejected_with_its_reason() -> None:
    message = call(userId="u" * 200)
    alone = CUSTOMERIO.map(message, SETTINGS)
    assert alone.rejected is not None
    result = run([{"transform": {"traits.email": "lower"}}], message)
    assert result == MapResult(rejected=alone.rejected)


def test_one_call_a_function_changed_is_mapped_as_changed(tmp_path: Path) -> None:
    (tmp_path / "seen.py").write_text(
        "def seen(message):\n    return dict(message, event='Seen')\n"
    )
    result = run([{"function": "seen.py:seen"}], call(), base_dir=tmp_path, allow_functions=True)
    assert result == CUSTOMERIO.map(call(event="Seen"), SETTINGS)
