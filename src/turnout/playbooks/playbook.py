"""A connection's compiled playbook: consent first, then the rules in order.

Compiling validates everything once (every error is a PlaybookError naming its place), so that
applying it to a message can never fail: whatever the message, `apply` returns a `Shaped`.

A playbook runs as one generated Python function (codegen.py says why that is safe), written
on first use: consent's usual case read inline, then per call type only the rules whose `when`
allows it, each condition an inline expression and each action inline lines, with the outcome
kept in locals until the `Shaped` is returned. The top-level fields changed are bits of an int
while it runs, and each set of them is one shared frozenset. A function that splits a message
hands its messages to a second kind of generated function, which records what the rules after
it make of each in a `Run`.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from turnout.playbooks import conditions, pathcode
from turnout.playbooks.codegen import Scratch, Source
from turnout.playbooks.consent import Check, compile_consent
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.messages import emit_as_dict, quick_converter
from turnout.playbooks.pathcode import Ownership
from turnout.playbooks.paths import clone, describe
from turnout.playbooks.rules import Options, Rule, Run, Step, bucket, compile_rule
from turnout.spec.message import Message


class Shaped(msgspec.Struct):
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
    - `typed`: from `shape`, the one message to deliver as the typed Message: the input itself
      when nothing changed, else the input with the changed fields replaced (the checks of
      `as_message` passed). None otherwise (`apply`, a split, or a value that failed a check:
      `as_message` says why).

    A struct rather than a dataclass because the generated code makes one per message: built
    from its fields in order, it costs half of what setting them one by one costs.
    """

    messages: list[dict[str, Any]]
    filtered: str | None = None
    rules_applied: list[str] = msgspec.field(default_factory=list)
    adjustments: list[str] = msgspec.field(default_factory=list)
    error: str | None = None
    changed: bool = False
    fields: frozenset[str] | None = frozenset()
    typed: Message | None = None


class Playbook:
    """A compiled playbook. Build it with `Playbook.compile`, apply it with `apply`:

    `apply(message) -> Shaped` shapes one message, given as a dict with Segment's names
    (`msgspec.to_builtins` of the stored message, or `as_dict`). The dict and everything in it
    are left unchanged: the run copies what it changes. It never raises. It is the generated
    function itself, an attribute of the playbook (set on the first call): one call per message.

    `shape(message) -> Shaped` is what a lane calls: `apply(as_dict(message))` for a typed
    message, the same outcome, except that each dict in `messages` holds only the top-level
    fields the playbook reads or writes for the message's type (all of them when a rule has a
    function). The fields it changed are there, so `as_message(out, message, shaped.fields)`
    gives the same typed message, which `shape` gives already in `typed` (for one message out
    whose values pass the quick checks).
    """

    __slots__ = (
        "_bits", "_consent", "_continuations", "_fieldsets", "_rules", "_to_message", "apply",
        "consent", "consent_missing", "rules", "shape",
    )  # fmt: skip

    apply: Callable[[dict[str, Any]], Shaped]
    shape: Callable[[Message], Shaped]

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
        # Generated on first use: the function applying the playbook, and per plan (the numbers
        # of the rules to run) the function shaping what a function returned.
        self.apply = self._generate_and_apply
        self.shape = self._generate_and_shape
        self._continuations: dict[tuple[int, ...], _Continuation] = {}
        # The bit of each top-level field name the generated code notes a change under.
        self._bits: dict[str, int] = {}
        self._fieldsets = _FieldSets(self._bits)
        self._to_message = _ToMessage(self._fieldsets)

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

    def _generate_and_shape(self, message: Message) -> Shaped:
        """`shape` until the first call has generated it."""
        return self._generated("shape", self._generate_shape)(message)

    def _generate_and_apply(self, message: dict[str, Any]) -> Shaped:
        """`apply` until the first call has generated it."""
        return self._generated("apply", self._generate)(message)

    def _generated(self, attribute: str, generate: Callable[[], Callable[[Any], Shaped]]
                   ) -> Callable[[Any], Shaped]:  # fmt: skip
        """The function `generate` writes, kept as `attribute` for every later call; a defect of
        the engine costs the message at hand, not the lane (the next call tries again)."""
        try:
            function = generate()
        except Exception:
            error = _engine_error()
            return lambda _: error
        setattr(self, attribute, function)
        return function

    def _plan(self, kind: Any) -> tuple[int, ...]:
        """The numbers of the rules whose conditions allow calls of type `kind`."""
        kind = kind if type(kind) is str else None
        return tuple(
            rule.number for rule in self._rules if rule.types is None or kind in rule.types
        )

    def _generate(self) -> _Shape:
        """The function applying the playbook to a message: consent, then the rules for its
        type (the types named by `when`s one by one; any other shares the rules without a
        type), returning the Shaped; any exception is an engine error."""
        source = Source(self._namespace())
        with source.block("def apply(_in)"):
            with source.block("try"):
                self._emit_consent(source)
                if not self._rules:
                    _return_shaped(source, "[_in]", "None", "[]", "[]", "None", "False",
                                   "_NO_FIELDS")  # fmt: skip
                else:
                    _emit_run_start(source)
                    source.line(f"_kind = _m.get({source.name('type')})")  # no action changes it
                    with source.block("if _kind.__class__ is not str"):
                        source.line("_kind = None")
                    self._emit_by_type(source, lambda plan: self._emit_plan(source, plan))
            with source.block("except Exception"):  # a defect of the engine must cost one
                source.line("return _engine_error()")  # message, not the lane
        return source.function("apply")

    def _generate_shape(self) -> Callable[[Message], Shaped]:
        """`shape`: `apply(as_dict(message))` in one function, with the type read first so
        that the dict holds only the fields the rules for that type (and consent) read or
        write: building the rest is most of what `as_dict` costs. A rule with a function
        needs them all."""
        source = Source(self._namespace())
        with source.block("def shape(_msg)"):
            with source.block("try"):
                source.line("_kind = _msg.type")
                with source.block("if _kind.__class__ is not str"):
                    source.line("_kind = None")
                self._emit_by_type(source, lambda plan: self._emit_shape_plan(source, plan))
            with source.block("except Exception"):
                source.line("return _engine_error()")
        return source.function("shape")

    def _emit_shape_plan(self, source: Source, plan: tuple[int, ...]) -> None:
        """The dict of the fields `plan` touches, then what `apply` does with it."""
        emit_as_dict(source, "_msg", "_in", self._fields_read(plan))
        self._emit_consent(source)
        if not self._rules:
            _return_shaped(source, "[_in]", "None", "[]", "[]", "None", "False", "_NO_FIELDS",
                           typed="_msg")  # fmt: skip
            return
        _emit_run_start(source)
        self._emit_plan(source, plan, original="_msg")

    def _fields_read(self, plan: tuple[int, ...]) -> frozenset[str] | None:
        """The top-level fields that consent and the rules of `plan` read or write; None (all
        of them) when a rule has a function, which is handed the whole call."""
        needed = {"type"} | ({"context"} if self._consent is not None else set())
        for rule in self._rules:
            if rule.number in plan:
                touched = rule.fields()
                if touched is None:
                    return None
                needed |= touched
        return frozenset(needed)

    def _emit_consent(self, source: Source) -> None:
        """Lines returning the Shaped of a message in `_in` that consent filters."""
        if self._consent is None:
            return
        with source.block(f"if not {self._consent.usual_case(source, '_in')}"):
            source.line("_r = _consent(_in)")
            with source.block("if _r is not None"):
                _return_shaped(source, "[]", "_r", "[]", "[]", "None", "False", "_NO_FIELDS")

    def _emit_by_type(self, source: Source, emit_plan: Callable[[tuple[int, ...]], None]) -> None:
        """A branch per plan (the rules for the types named by `when`s, one plan per set of
        types sharing it; any other type runs the rules without a type) on `_kind`."""
        plans: dict[tuple[int, ...], list[str]] = {}
        named = set().union(*(rule.types or () for rule in self._rules))
        for kind in sorted(named, key=_usual_first):
            plans.setdefault(self._plan(kind), []).append(kind)
        other = self._plan(None)
        plans.pop(other, None)  # the types that no `when` names, and any other value
        keyword = "if"
        for plan, kinds in plans.items():
            if len(kinds) == 1:
                test = f"_kind == {source.name(kinds[0], 'type')}"
            else:
                test = f"_kind in {source.name(frozenset(kinds), 'types')}"
            with source.block(f"{keyword} {test}"):
                emit_plan(plan)
            keyword = "elif"
        with source.block("else") if plans else source.guard(None):
            emit_plan(other)

    def _emit_plan(self, source: Source, plan: tuple[int, ...], original: str | None = None
                   ) -> None:  # fmt: skip
        """The rules of `plan`, written twice (see pathcode.Ownership), then the outcome; given
        the local holding the typed `original` (in `shape`), the outcome has it as `typed`,
        with the changed fields replaced."""
        recorder, scratch = Ownership(), Scratch(source.namespace)
        for rule in self._rules:
            if rule.number in plan:
                rule.emit(scratch, _Locals(self._bits, recorder), once=True)
        ownership = Ownership(recorder.events)
        ownership.prologue(source)
        frame = _Locals(self._bits, ownership)
        for rule in self._rules:
            if rule.number in plan:
                rule.emit(source, frame, once=True)
        with source.block("if _fields"):
            typed = "None" if original is None else f"_to_message[_fields](_m, {original})"
            _return_shaped(source, "[_m]", "None", "_applied", "_adjust", "None", "True",
                           "_fieldsets[_fields]", typed=typed)  # fmt: skip
        # Nothing changed: the caller's own dict, so it may deliver its typed original.
        _return_shaped(source, "[_in]", "None", "_applied", "_adjust", "None", "False",
                       "_NO_FIELDS", typed=original or "None")  # fmt: skip

    def _generate_continuation(self, plan: tuple[int, ...]) -> _Continuation:
        """The function shaping one of the messages a function returned with the rules of
        `plan` (those after the function's): it records the outcome in the run."""
        source = Source(self._namespace())
        recorder, scratch = Ownership(), Scratch(source.namespace)
        for rule in self._rules:
            if rule.number in plan:
                rule.emit(scratch, _Recorded(self._bits, recorder), once=False)
        ownership = Ownership(recorder.events)
        frame = _Recorded(self._bits, ownership)
        with source.block("def shape(_m, _run)"):
            source.line("_applied = _run.rules_applied")
            source.line("_adjust = _run.adjustments")
            ownership.prologue(source)
            for rule in self._rules:
                if rule.number in plan:
                    rule.emit(source, frame, once=False)
            source.line("_run.messages.append(_m)")
        return source.function("shape")

    def _namespace(self) -> dict[str, Any]:
        return {
            **_NAMESPACE,
            "_consent": self._consent,
            "_fieldsets": self._fieldsets,
            "_to_message": self._to_message,
            "_split": self._split,
            "_continue": self._continue,
        }

    def _split(
        self,
        message: dict[str, Any],
        applied: list[str],
        adjustments: list[str],
        fields: int,
        step: Step,
        number: int,
    ) -> Shaped:
        """Rule `number`'s function, called from the generated function with its locals: each
        message it returns goes through the rules after it."""
        run = Run(applied, adjustments, fields)
        for each in step(message, run):  # each has its own top level, owns nothing below it
            self._continue(dict(each), number, run)
        # A function ran (or raised), so the input is never what is handed back.
        fields_changed = None if run.rewritten else self._fieldsets[run.fields]
        changed = run.rewritten or run.fields != 0
        if run.error is not None:
            return Shaped([], None, run.rules_applied, run.adjustments, run.error, changed,
                          fields_changed)  # fmt: skip
        filtered = None
        if not run.messages:
            filtered = run.drops[0] if run.drops else None
        elif run.drops:
            run.adjustments.extend(f"{reason} (one of the split messages)" for reason in run.drops)
        return Shaped(run.messages, filtered, run.rules_applied, run.adjustments, None, changed,
                      fields_changed)  # fmt: skip

    def _continue(self, message: dict[str, Any], start: int, run: Run) -> None:
        """Shape `message` with the rules after rule `start` that allow its type."""
        plan = tuple(number for number in self._plan(message.get("type")) if number > start)
        shape = self._continuations.get(plan)
        if shape is None:
            shape = self._continuations[plan] = self._generate_continuation(plan)
        shape(message, run)


def _usual_first(kind: str) -> tuple[int, str]:
    """The order the generated code tests call types in: the commonest first."""
    return (_USUAL.index(kind) if kind in _USUAL else len(_USUAL), kind)


_USUAL: Final = ("track", "identify", "page", "screen", "group", "alias")
_Shape = Callable[[dict[str, Any]], Shaped]
_Continuation = Callable[[dict[str, Any], Run], None]


class _FieldSets(dict[int, frozenset[str]]):
    """The top-level field names of each bitmask of changes (one shared frozenset per mask)."""

    __slots__ = ("_bits",)

    def __init__(self, bits: dict[str, int]) -> None:
        super().__init__()
        self._bits = bits

    def __missing__(self, mask: int) -> frozenset[str]:
        names = frozenset(name for name, bit in self._bits.items() if mask & bit)
        self[mask] = names
        return names


class _ToMessage(dict[int, Callable[[dict[str, Any], Message], Message | None]]):
    """The conversion back to a typed message (`messages.quick_converter`) of each bitmask of
    changes: only the changed fields are read and checked."""

    __slots__ = ("_fieldsets",)

    def __init__(self, fieldsets: _FieldSets) -> None:
        super().__init__()
        self._fieldsets = fieldsets

    def __missing__(self, mask: int) -> Callable[[dict[str, Any], Message], Message | None]:
        convert = self[mask] = quick_converter(self._fieldsets[mask])
        return convert


class _Frame:
    def __init__(self, bits: dict[str, int], ownership: Ownership) -> None:
        self._bits = bits
        self.ownership = ownership

    def bit(self, source: Source, field: str) -> str:
        bit = self._bits.get(field)
        if bit is None:
            bit = self._bits[field] = 1 << len(self._bits)
        return source.name(bit, "bit")


class _Locals(_Frame):
    """The function applying the playbook: the outcome is in its locals; it returns it."""

    def wrote(self, source: Source, field: str) -> None:
        source.line(f"_fields |= {self.bit(source, field)}")

    def drop(self, source: Source, reason: str) -> None:
        _return_shaped(source, "[]", reason, "_applied", "_adjust", "None", "_fields != 0",
                       "_fieldsets[_fields]")  # fmt: skip

    def function(self, source: Source, step: str, number: int) -> None:
        number_name = source.name(number, "rule")
        source.line(f"return _split(_m, _applied, _adjust, _fields, {step}, {number_name})")


class _Recorded(_Frame):
    """The function shaping a message a function returned: the outcome is in the run."""

    def wrote(self, source: Source, field: str) -> None:
        source.line(f"_run.fields |= {self.bit(source, field)}")

    def drop(self, source: Source, reason: str) -> None:
        source.line(f"_run.drops.append({reason})")
        source.line("return")

    def function(self, source: Source, step: str, number: int) -> None:
        with source.block(f"for _k in {step}(_m, _run)"):
            source.line(f"_continue(dict(_k), {source.name(number, 'rule')}, _run)")
        source.line("return")


def _emit_run_start(source: Source) -> None:
    """The locals a run of the rules keeps its outcome in; the top level of the message is the
    run's own from the start."""
    source.line("_m = dict(_in)")
    source.line("_applied = []")
    source.line("_adjust = []")
    source.line("_fields = 0")


def _return_shaped(source: Source, *values: str, typed: str = "None") -> None:
    """`return Shaped(*values, typed)`, every field given in order."""
    assert len(values) + 1 == len(Shaped.__struct_fields__)
    source.line(f"return _Shaped({', '.join(values)}, {typed})")


def _engine_error() -> Shaped:
    """The outcome of a defect of the engine (called while handling it)."""
    return Shaped(messages=[], error="playbook engine error:\n" + traceback.format_exc())


_NAMESPACE: Final[dict[str, Any]] = {
    **conditions.NAMESPACE,
    **pathcode.NAMESPACE,
    "_clone": clone,
    "_describe": describe,
    "_bucket": bucket,
    "_Shaped": Shaped,
    "_NO_FIELDS": frozenset(),
    "_engine_error": _engine_error,
}
