"""A connection's playbook between the log and the destination's mapping.

The lane reads a message, the playbook shapes it (consent, rules, a function), and the
destination maps what comes out. The outcome is one `MapResult` per log message, whatever the
playbook did, so the lane treats a playbook's verdicts exactly like the destination's own:

- filtered by consent or a rule: `filtered` with the playbook's reason;
- a function that raised (or returned something else): `rejected` with its traceback, so the
  message is dead-lettered and the lane goes on;
- split into several messages: each is mapped, and their operations are that log message's;
- adjustments of the playbook come first, then the destination's.

A lane calls `map_shaped`, which gives only the outcome; the preview (API, dashboard, CLI) calls
`shape_and_map`, which also keeps what the playbook made of the call: both run the same code to
the same outcome, so what the preview shows is what the lane does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from turnout.destinations.base import Destination, MapResult
from turnout.playbooks import Playbook, Shaped, as_message
from turnout.spec.message import Message


@dataclass(frozen=True, slots=True)
class ActivePlaybook:
    """The playbook revision a lane applies: `playbook` is None when the revision asks for
    nothing (no rules, no consent), so the lane skips it at no cost."""

    revision: int
    playbook: Playbook | None

    @classmethod
    def of(cls, revision: int, playbook: Playbook) -> ActivePlaybook:
        return cls(revision, None if playbook.is_empty else playbook)


@dataclass(slots=True)
class Shaping:
    """What a playbook and the destination made of one message: `result` is what the lane acts
    on; `shaped` and `outputs` (the typed messages mapped) are for previews and tests."""

    result: MapResult
    shaped: Shaped
    outputs: list[Message] = field(default_factory=list)


def map_shaped(
    playbook: Playbook, destination: Destination, settings: Any, message: Message
) -> tuple[MapResult, Shaped]:
    """What a lane does with `message`: the `result` of `shape_and_map` and what the playbook
    made of the call, without the rest of the record, so the usual case (one message out, made
    typed by `shape`) costs the destination's `map` and little more."""
    shaped = playbook.shape(message)
    typed = shaped.typed
    if typed is not None:
        return _joined(shaped, destination.map(typed, settings)), shaped
    return _outcome(shaped, destination, settings, message).result, shaped


def shape_and_map(
    playbook: Playbook, destination: Destination, settings: Any, message: Message
) -> Shaping:
    """Apply the playbook to `message`, then map every message it gives; never raises for what
    the playbook does (a destination's own mapping errors propagate, as without a playbook)."""
    return _outcome(playbook.shape(message), destination, settings, message)


def _outcome(shaped: Shaped, destination: Destination, settings: Any, message: Message) -> Shaping:
    """What the playbook's verdict on `message` comes to once the destination has mapped
    whatever it lets through (see the module's note)."""
    typed = shaped.typed
    if typed is not None:  # one message out, typed already
        return Shaping(_joined(shaped, destination.map(typed, settings)), shaped, [typed])
    if shaped.error is not None:
        return Shaping(MapResult(rejected=shaped.error), shaped)
    if shaped.filtered is not None or not shaped.messages:
        reason = shaped.filtered or "playbook: no message left to deliver"
        return Shaping(MapResult(filtered=reason), shaped)
    if len(shaped.messages) == 1:
        return _one(shaped, destination, settings, message)
    operations: list[Any] = []
    adjustments = list(shaped.adjustments)
    filtered: list[str] = []
    outputs: list[Message] = []
    count = len(shaped.messages)
    for index, out in enumerate(shaped.messages, 1):
        where = f"split message {index} of {count}: "
        try:
            typed = as_message(out, message, shaped.fields) if shaped.changed else message
        except msgspec.ValidationError as exc:
            reason = f"{where}the playbook made the call invalid: {exc}"
            return Shaping(MapResult(rejected=reason), shaped, outputs)
        outputs.append(typed)
        mapped = destination.map(typed, settings)
        if mapped.rejected is not None:
            return Shaping(MapResult(rejected=where + mapped.rejected), shaped, outputs)
        if mapped.filtered is not None:
            filtered.append(mapped.filtered)
            continue
        operations.extend(mapped.operations)
        adjustments.extend(where + adjustment for adjustment in mapped.adjustments)
    if not operations and filtered:
        return Shaping(MapResult(filtered=filtered[0], adjustments=adjustments), shaped, outputs)
    adjustments.extend(f"{reason} (one of the split messages)" for reason in filtered)
    return Shaping(MapResult(operations=operations, adjustments=adjustments), shaped, outputs)


def _one(shaped: Shaped, destination: Destination, settings: Any, message: Message) -> Shaping:
    """One message out that `shape` did not make typed: a function ran, or a changed value
    failed its quick check, and `as_message` says why."""
    try:
        typed = (
            as_message(shaped.messages[0], message, shaped.fields) if shaped.changed else message
        )
    except msgspec.ValidationError as exc:
        reason = f"the playbook made the call invalid: {exc}"
        return Shaping(MapResult(rejected=reason), shaped, [])
    return Shaping(_joined(shaped, destination.map(typed, settings)), shaped, [typed])


def _joined(shaped: Shaped, mapped: MapResult) -> MapResult:
    """The outcome of one message out: the destination's result, after the playbook's
    adjustments; when the playbook noted nothing, the destination's own result."""
    if mapped.rejected is not None:
        return MapResult(rejected=mapped.rejected)
    if mapped.filtered is not None:
        return MapResult(filtered=mapped.filtered, adjustments=list(shaped.adjustments))
    if shaped.adjustments:
        adjustments = [*shaped.adjustments, *mapped.adjustments]
        return MapResult(operations=mapped.operations, adjustments=adjustments)
    return mapped
