"""Trying a playbook without sending anything: on stored calls (preview) or on fixtures (test).

Each call goes through `delivery.shaping.shape_and_map`, whose outcome is exactly the lane's
(`map_shaped`, the same code without the record of how it came about): the playbook, then the
destination's mapping. The result says, per call, what it was, what the
playbook made of it, and what the destination would be sent, or why nothing would be; the
summary counts what would be delivered, filtered (by which rule) and changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from turnout.delivery.shaping import shape_and_map
from turnout.destinations.base import Destination, MapResult
from turnout.playbooks.playbook import Playbook
from turnout.spec import message as spec_message


@dataclass(slots=True)
class Tried:
    """One call through the playbook and the destination's mapping."""

    before: dict[str, Any]  # the call as stored
    outcome: str  # "delivered" | "filtered" | "dead_lettered"
    after: list[dict[str, Any]] = field(default_factory=list)  # what the destination maps
    operations: list[Any] = field(default_factory=list)  # what it would be sent
    reason: str = ""  # why filtered or dead-lettered
    adjustments: list[str] = field(default_factory=list)
    rules_applied: list[str] = field(default_factory=list)
    changed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": str(self.before.get("messageId") or ""),
            "outcome": self.outcome,
            "reason": self.reason,
            "changed": self.changed,
            "rules_applied": self.rules_applied,
            "adjustments": self.adjustments,
            "before": self.before,
            "after": self.after,
            "operations": self.operations,
        }


def try_call(
    playbook: Playbook, destination: Destination, settings: Any, call: dict[str, Any]
) -> Tried:
    """Shape and map one call (a dict as stored, or a fixture) without sending it."""
    try:
        message = spec_message.decode(msgspec.json.encode(call))
    except msgspec.ValidationError as exc:
        return Tried(call, "dead_lettered", reason=f"not a valid call: {exc}")
    try:
        shaping = shape_and_map(playbook, destination, settings, message)
    except Exception as exc:  # as the lane: a mapping defect costs this call only
        reason = f"could not be mapped: {type(exc).__name__}: {exc}"
        return Tried(call, "dead_lettered", reason=reason)
    result: MapResult = shaping.result
    shaped = shaping.shaped
    tried = Tried(
        before=call,
        outcome="delivered",
        after=[_builtins(out) for out in shaping.outputs],
        operations=[_builtins(op) for op in result.operations],
        adjustments=list(result.adjustments),
        rules_applied=list(shaped.rules_applied),
        changed=shaped.changed,
    )
    if result.rejected is not None:
        tried.outcome, tried.reason, tried.operations = "dead_lettered", result.rejected, []
    elif result.filtered is not None:
        tried.outcome, tried.reason = "filtered", result.filtered
    return tried


def summary(tried: list[Tried]) -> dict[str, Any]:
    """n delivered, n filtered (by reason), n dead-lettered, n changed by the playbook."""
    filtered = Counter(t.reason for t in tried if t.outcome == "filtered")
    return {
        "calls": len(tried),
        "delivered": sum(t.outcome == "delivered" for t in tried),
        "filtered": sum(filtered.values()),
        "filtered_by": dict(filtered.most_common()),
        "dead_lettered": sum(t.outcome == "dead_lettered" for t in tried),
        "changed": sum(t.changed for t in tried),
    }


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)
