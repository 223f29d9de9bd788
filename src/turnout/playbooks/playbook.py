"""A connection's compiled playbook: consent first, then the rules in order.

Compiling validates everything once (every error is a PlaybookError naming its place), so that
applying it to a message can never fail: whatever the message, `apply` returns a `Shaped`.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnout.playbooks.conditions import Predicate
from turnout.playbooks.consent import Check, compile_consent
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.rules import Options, Rule, Run, Step, compile_rule


@dataclass(slots=True)
class Shaped:
    """What a playbook made of one message.

    - `messages`: what to deliver: usually the one message, changed or not; none when it was
      filtered or failed; several when a function split it.
    - `filtered`: why nothing is delivered (`consent: not granted: marketing`, `playbook rule 1:
      drop`, ...), when that is the outcome.
    - `rules_applied`: the rules whose condition matched (`rule 2`, `rule 3 "hash PII"`).
    - `adjustments`: what a rule could not do, and what was dropped of a split message.
    - `error`: a function's traceback: the message should be dead-lettered with it.
    - `changed`: whether any action changed anything; when False, `messages` is the input dict,
      untouched, and a caller holding the typed message may deliver that instead.
    - `fields`: the top-level fields changed (`{"properties", "event"}`), None when a function
      ran (it may have changed any): `as_message` checks only these.
    """

    messages: list[dict[str, Any]]
    filtered: str | None = None
    rules_applied: list[str] = field(default_factory=list)
    adjustments: list[str] = field(default_factory=list)
    error: str | None = None
    changed: bool = False
    fields: frozenset[str] | None = frozenset()


class Playbook:
    """A compiled playbook. Build it with `Playbook.compile`, apply it with `apply`."""

    __slots__ = ("_consent", "_plans", "_rules", "consent", "consent_missing", "rules")

    def __init__(
        self,
        rules: list[dict[str, Any]],
        compiled: tuple[Rule, ...],
        consent: list[str],
        consent_missing: str,
        check: Check | None,
    ) -> None:
        self.rules = rules  # as given (validated), for display and diffs
        self.consent = consent
        self.consent_missing = consent_missing
        self._rules = compiled
        self._consent = check
        self._plans: dict[str | None, tuple[_Planned, ...]] = {}

    @classmethod
    def compile(
        cls,
        rules: Sequence[dict[str, Any]] | None,
        consent: Sequence[str] = (),
        consent_missing: str = "deliver",
        base_dir: Path | None = None,
        allow_functions: bool = False,
    ) -> Playbook:
        """Validate and compile a playbook; PlaybookError (with its location) for anything
        invalid. `base_dir` is where `function` files are found (the configuration file's
        directory); `allow_functions` is True only for playbooks from the configuration file."""
        if rules is None:
            rules = []
        if not isinstance(rules, list | tuple):
            raise PlaybookError(f"a playbook is a list of rules, got {type(rules).__name__}")
        check = compile_consent(consent, consent_missing)
        options = Options(base_dir, allow_functions)
        names: dict[str, int] = {}
        compiled = tuple(
            compile_rule(number, raw, names, options) for number, raw in enumerate(rules, 1)
        )
        return cls(copy.deepcopy(list(rules)), compiled, list(consent), consent_missing, check)

    @property
    def is_empty(self) -> bool:
        """Nothing to do: no rules and no consent needed, so `apply` returns its input as is."""
        return not self._rules and self._consent is None

    def apply(self, message: dict[str, Any]) -> Shaped:
        """Shape one message, given as a dict with Segment's names (`msgspec.to_builtins` of the
        stored message, or `as_dict`). The dict and everything in it are left unchanged: the
        run copies what it changes. Never raises."""
        run = Run()
        try:
            if self._consent is not None:
                reason = self._consent(message)
                if reason is not None:
                    return Shaped(messages=[], filtered=reason)
            if not self._rules:
                return Shaped(messages=[message])
            self._run(dict(message), 0, run)
        except Exception:  # a defect of the engine must cost one message, not the lane
            return Shaped(messages=[], error="playbook engine error:\n" + traceback.format_exc())
        if not run.changed and len(run.messages) == 1:
            run.messages[0] = message  # the same content: hand back the caller's own dict
        return _shaped(run)

    def _plan(self, kind: str | None) -> tuple[_Planned, ...]:
        """The rules whose conditions allow calls of type `kind`, worked out once per type, as
        plain tuples (unpacking them is the cheapest way to read a rule, once per message)."""
        plan = self._plans.get(kind)
        if plan is None:
            plan = tuple(
                (rule.number, rule.label, rule.when, rule.steps)
                for rule in self._rules
                if rule.types is None or kind in rule.types
            )
            if len(self._plans) < 64:  # the six call types, and whatever functions invent
                self._plans[kind] = plan
        return plan

    def _run(self, message: dict[str, Any], start: int, run: Run) -> None:
        kind = message.get("type")  # no action changes it
        applied = run.rules_applied
        for number, label, when, steps in self._plan(kind if type(kind) is str else None):
            if number <= start or (when is not None and not when(message)):
                continue
            if label not in applied:
                applied.append(label)
            for step in steps:
                replaced = step(message, run)
                if replaced is not None:
                    # Split messages are changed independently by the rules after this one:
                    # each has its own top level and owns nothing below it yet.
                    for each in replaced:
                        run.owned = set()
                        self._run(dict(each), number, run)
                    return
        run.messages.append(message)


# A rule as `_run` reads it: number, label, the rest of its condition, its steps.
_Planned = tuple[int, str, Predicate | None, tuple[Step, ...]]


def _shaped(run: Run) -> Shaped:
    fields = None if run.fields is None else frozenset(run.fields)
    if run.error is not None:
        return Shaped([], None, run.rules_applied, run.adjustments, run.error, run.changed, fields)
    filtered = None
    if not run.messages:
        filtered = run.drops[0] if run.drops else None
    elif run.drops:
        run.adjustments.extend(f"{reason} (one of the split messages)" for reason in run.drops)
    return Shaped(
        run.messages, filtered, run.rules_applied, run.adjustments, None, run.changed, fields
    )
