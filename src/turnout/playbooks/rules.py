"""One playbook rule: its `when` condition and its actions, validated when the playbook is
compiled, and written as code (see codegen.py) when it is first applied.

A rule's actions always run in this order, whatever order the rule lists them in:

    drop, rename_event, set, copy, move, remove, keep, transform, sample, function

so that, for example, a rule can copy a field and then hash the copy, and a sample is decided on
the message as the rule left it. Within `set`, `copy`, `move`, `keep` and `transform`, entries
run in the order written. An action that cannot apply to a message (a transform of a missing or
wrongly typed field, a copy from nowhere, a write under a field that is not an object) leaves the
message as it was for that entry, records an adjustment saying why, and the rule goes on.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Final, Protocol

from turnout.playbooks.codegen import Source
from turnout.playbooks.conditions import (
    ConditionError,
    Expression,
    emit,
    fields_read,
    parse_when,
)
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.functions import Function, load_function, user_traceback
from turnout.playbooks.pathcode import Ownership, own_found, present, read_parent, write
from turnout.playbooks.paths import (
    Path,
    describe,
    glob_matcher,
    parse_path,
)
from turnout.playbooks.transforms import Transform, compile_transform

# Every key a rule may have, in the order its actions run (`name` and `when` first).
ACTIONS: Final = (
    "drop", "rename_event", "set", "copy", "move", "remove", "keep", "transform", "sample",
    "function",
)  # fmt: skip
KEYS: Final = ("name", "when", *ACTIONS)


class Run:
    """What applying a playbook to one message has produced so far, once a function has split
    it: the messages that later rules shape one by one add to it. (Until then, the generated code
    keeps the same things in its locals.)"""

    __slots__ = (
        "adjustments", "drops", "error", "fields", "messages", "rewritten", "rules_applied",
    )  # fmt: skip

    def __init__(self, rules_applied: list[str], adjustments: list[str], fields: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self.drops: list[str] = []
        self.rules_applied = rules_applied
        self.adjustments = adjustments
        self.error: str | None = None
        self.fields = fields  # the top-level fields written or removed, as bits (see playbook.py)
        self.rewritten = False  # a function ran: any field may have changed


# A function's step returns the messages that replace the one it was given: [] when it was
# dropped (the reason is in `Run.drops`) or failed (`Run.error`), several when it split it.
Step = Callable[[dict[str, Any], Run], list[dict[str, Any]]]


class Frame(Protocol):
    """Where the generated code of a rule keeps the outcome: in the locals of the function
    shaping a message, which returns it (the usual way), or in a `Run` (for the messages a
    function returned)."""

    ownership: Ownership

    def wrote(self, source: Source, field: str) -> None:
        """The line noting a change under the top-level `field`."""

    def drop(self, source: Source, reason: str) -> None:
        """Lines that end the playbook for `_m`, filtered with the string named `reason`."""

    def function(self, source: Source, step: str, number: int) -> None:
        """Lines that call the function step named `step` (of rule `number`) and shape each
        message it returns with the rules after this one."""


class Action(Protocol):
    def emit(self, source: Source, frame: Frame) -> None:
        """The action's lines, over the message `_m` and the local `_adjust` (adjustments);
        `frame` writes how it notes changes and ends, and keeps the function's `Ownership`."""

    def fields(self) -> frozenset[str] | None:
        """The top-level fields of the message the action's code reads or writes (None: it
        may touch any, as a function does)."""


@dataclass(frozen=True, slots=True)
class Rule:
    number: int  # 1-based
    label: str  # `rule 2`, or `rule 2 "hash PII"` when named
    types: frozenset[str] | None  # the call types `when` allows (None: any)
    when: Expression | None  # the rest of `when` (None: nothing more to test)
    actions: tuple[Action, ...]

    def fields(self) -> frozenset[str] | None:
        """The top-level fields the rule's condition and actions read or write (None: any)."""
        found = {"type"} if self.types is not None else set()
        if self.when is not None:
            found |= fields_read(self.when)
        for action in self.actions:
            touched = action.fields()
            if touched is None:
                return None
            found |= touched
        return frozenset(found)

    def emit(self, source: Source, frame: Frame, *, once: bool) -> None:
        """The rule's lines: its condition, then its actions in order. `once`: this code runs at
        most once per run, so the rule's label cannot be in `_applied` yet."""
        label = source.name(self.label, "rule")
        source.line(f"# {self.number:d}")
        with source.guard(None if self.when is None else emit(self.when, source)):
            if once:
                source.line(f"_applied.append({label})")
            else:
                with source.block(f"if {label} not in _applied"):
                    source.line(f"_applied.append({label})")
            for action in self.actions:
                action.emit(source, frame)


@dataclass(frozen=True, slots=True)
class Options:
    """How a playbook is compiled: where functions' files are, and whether they may be used."""

    base_dir: FilePath | None
    allow_functions: bool


def compile_rule(number: int, raw: Any, names: dict[str, int], options: Options) -> Rule:
    """Validate and compile the rule at position `number` (1-based); PlaybookError otherwise.
    `names` maps the names of the rules before it to their numbers (names must be unique)."""
    if not isinstance(raw, dict):
        raise PlaybookError(f"a rule is a table of actions, got {describe(raw)}", rule=number)
    unknown = [key for key in raw if key not in KEYS]
    if unknown:
        raise PlaybookError(
            f"unknown key {unknown[0]!r} (a rule has: {', '.join(KEYS)})", rule=number,
            field=str(unknown[0]),
        )
    name = _name(number, raw.get("name"), names)
    label = f"rule {number}" if name is None else f'rule {number} "{name}"'
    build = _Builder(number, name, label, options)
    types, when = build.when(raw["when"]) if "when" in raw else (None, None)
    if not any(key in raw for key in ACTIONS):
        raise PlaybookError(f"the rule has no action (one of: {', '.join(ACTIONS)})", rule=number)
    actions = [build.action(key, raw[key]) for key in ACTIONS if key in raw]
    if raw.get("drop") is True and len(actions) > 1:
        others = [key for key in ACTIONS if key in raw and key != "drop"]
        raise PlaybookError(
            f"drop = true ends the rule, so {', '.join(others)} would never run: move "
            f"{'them' if len(others) > 1 else 'it'} to another rule",
            rule=number, field="drop",
        )
    return Rule(number, label, types, when, tuple(each for each in actions if each is not None))


def _name(number: int, name: Any, names: dict[str, int]) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise PlaybookError(f"a name is a non-empty string, got {name!r}", rule=number,
                            field="name")
    if len(name) > 200:
        raise PlaybookError("a name is at most 200 characters", rule=number, field="name")
    if name in names:
        raise PlaybookError(f"the name {name!r} is already rule {names[name]}'s", rule=number,
                            field="name")
    names[name] = number
    return name


class _Builder:
    """Compiles one rule's actions into steps, raising PlaybookError located at the action."""

    def __init__(self, number: int, name: str | None, label: str, options: Options) -> None:
        self.number = number
        self.name = name
        self.label = label
        self.prefix = f"playbook {label}: "
        self.options = options

    def error(self, message: str, field: str, entry: str | None = None) -> PlaybookError:
        return PlaybookError(message, rule=self.number, field=field, entry=entry)

    def when(self, text: Any) -> tuple[frozenset[str] | None, Expression | None]:
        if not isinstance(text, str):
            raise self.error(f"a condition is a string, got {describe(text)}", "when")
        try:
            return parse_when(text)
        except ConditionError as exc:
            raise PlaybookError(exc.message, rule=self.number, field="when", line=exc.line,
                                column=exc.column) from None

    def action(self, key: str, value: Any) -> Action | None:
        build: Callable[[Any], Action | None] = getattr(self, f"_{key}")
        return build(value)

    # -- paths and tables ----------------------------------------------------------------------

    def path(
        self, text: Any, field: str, *, write: bool, glob: bool = False, entry: str | None = None
    ) -> Path:
        """The parsed path; `entry` names the table key it belongs to when it is a value."""
        entry = entry if entry is not None else text if isinstance(text, str) else None
        try:
            path = parse_path(text, glob=glob)
        except ValueError as exc:
            raise self.error(str(exc), field, entry) from None
        if write and path.protected:
            raise self.error(
                f"{path.text} cannot be changed by a playbook (the call's type and messageId "
                "decide how it is delivered)", field, entry,
            )
        return path

    def table(self, value: Any, field: str, example: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{field} is a table: {field} = {example}", field)
        return value

    # -- actions, in the order they run ----------------------------------------------------------

    def _drop(self, value: Any) -> Action | None:
        if not isinstance(value, bool):
            raise self.error(f"drop is true or false, got {describe(value)}", "drop")
        if not value:
            return None
        return _Drop(f"playbook {self.label}: drop")

    def _rename_event(self, value: Any) -> Action:
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"rename_event is a non-empty string, got {value!r}", "rename_event")
        return _RenameEvent(value, self.prefix)

    def _set(self, value: Any) -> Action:
        items: list[tuple[Path, Any, bool]] = []
        for key, constant in self.table(value, "set", '{ "properties.currency" = "USD" }').items():
            path = self.path(key, "set", write=True)
            problem = _untomlable(constant)
            if problem:
                raise self.error(f"{problem} (a playbook holds TOML values)", "set", key)
            items.append((path, constant, isinstance(constant, dict | list)))
        return _Set(tuple(items), self.prefix)

    def _pairs(self, value: Any, field: str) -> list[tuple[Path, Path]]:
        example = '{ "properties.revenue" = "properties.total" }'
        pairs = []
        for target_text, source_text in self.table(value, field, example).items():
            target = self.path(target_text, field, write=True)
            source = self.path(source_text, field, write=field == "move", entry=target_text)
            if source.keys == target.keys:
                raise self.error(f"{field} to the same path", field, target_text)
            if field == "move" and (source.contains(target) or target.contains(source)):
                raise self.error("move between a field and a field inside it", field, target_text)
            pairs.append((target, source))
        return pairs

    def _copy(self, value: Any) -> Action:
        return _CopyOrMove(tuple(self._pairs(value, "copy")), False, self.prefix)

    def _move(self, value: Any) -> Action:
        return _CopyOrMove(tuple(self._pairs(value, "move")), True, self.prefix)

    def _remove(self, value: Any) -> Action:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts:
            raise self.error('remove is a list of paths: remove = ["traits.ssn"]', "remove")
        return _Remove(tuple(self.path(text, "remove", write=True, glob=True) for text in texts))

    def _keep(self, value: Any) -> Action:
        example = '{ "traits" = ["email", "name"] }'
        allow: list[tuple[Path, Callable[[dict[str, Any]], list[Any]], frozenset[str] | None]] = []
        for key, names in self.table(value, "keep", example).items():
            path = self.path(key, "keep", write=True)
            if not isinstance(names, list) or not all(
                isinstance(name, str) and name for name in names
            ):
                raise self.error(f"keep lists the names to keep: keep = {example}", "keep", key)
            exact = frozenset(name for name in names if not set(name) & set("*?["))
            globs = tuple(glob_matcher(name) for name in names if set(name) & set("*?["))
            allow.append((path, _unlisted(exact, globs), None if globs else exact))
        return _Keep(tuple(allow), self.prefix)

    def _transform(self, value: Any) -> Action:
        example = '{ "traits.email" = "lower" }'
        items: list[tuple[Path, tuple[Transform, ...], str]] = []
        for key, spec in self.table(value, "transform", example).items():
            path = self.path(key, "transform", write=True)
            specs = spec if isinstance(spec, list) else [spec]
            if not specs:
                raise self.error("an empty list of transforms", "transform", key)
            try:
                transforms = tuple(compile_transform(each) for each in specs)
            except ValueError as exc:
                raise self.error(str(exc), "transform", key) from None
            items.append((path, transforms, ", ".join(str(each) for each in specs)))
        return _Transform(tuple(items), self.prefix)

    def _sample(self, value: Any) -> Action:
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not 0 <= value <= 1
        ):
            raise self.error(f"sample is a fraction from 0 to 1 (0.1 keeps 10%), got {value!r}",
                             "sample")
        # Keyed with the rule's name (else its number), not the fraction: a person sampled in
        # stays in when the fraction grows, and two sampling rules pick independently.
        identity = f"name:{self.name}" if self.name is not None else f"rule:{self.number}"
        salt = hashlib.sha256(identity.encode()).digest()
        threshold = int(value * 2**64)
        return _Sample(salt, threshold, f"playbook {self.label}: sampled out (sample = {value})")

    def _function(self, value: Any) -> Action:
        options = self.options
        if not options.allow_functions:
            raise self.error(
                "functions may only be named in the configuration file's playbooks", "function"
            )
        if options.base_dir is None:
            raise self.error("no directory to load the function's file from", "function")
        try:
            function = load_function(value, options.base_dir)
        except ValueError as exc:
            raise self.error(str(exc), "function") from None
        return _Function(_call_step(function, str(value), self.label), self.number)


# -- actions as code ---------------------------------------------------------------------------
#
# Each action writes its lines (see Action.emit); they do what the action's description in the
# module's note says, adjustments word for word. Every value of the user's is a name.


@dataclass(frozen=True, slots=True)
class _Drop:
    reason: str

    def fields(self) -> frozenset[str]:
        return frozenset()

    def emit(self, source: Source, frame: Frame) -> None:
        frame.drop(source, source.name(self.reason))


@dataclass(frozen=True, slots=True)
class _RenameEvent:
    value: str
    prefix: str

    def fields(self) -> frozenset[str]:
        return frozenset(("event", "type"))  # the adjustment names the type

    def emit(self, source: Source, frame: Frame) -> None:
        with source.block('if isinstance(_m.get("event"), str)'):
            source.line(f'_m["event"] = {source.name(self.value)}')
            frame.ownership.replaced(source, "event")
            frame.wrote(source, "event")
        with source.block("else"):
            source.line(f"_adjust.append({source.name(self.adjustment, 'why')}(_m))")

    def adjustment(self, message: dict[str, Any]) -> str:
        kind = message.get("type")
        return (
            f"{self.prefix}rename_event: the message has no event"
            f"{f' (type {kind!r})' if isinstance(kind, str) else ''}; left as is"
        )


@dataclass(frozen=True, slots=True)
class _Set:
    items: tuple[tuple[Path, Any, bool], ...]  # path, constant, whether it must be copied
    prefix: str

    def fields(self) -> frozenset[str]:
        return _first_keys(path for path, _, _ in self.items)

    def emit(self, source: Source, frame: Frame) -> None:
        for path, constant, mutable in self.items:
            value = source.name(constant)
            if mutable:  # each message its own copy (a constant is read, never written)
                source.line(f"_v = _clone({value})")
                value = "_v"
            why = source.name(f"{self.prefix}set {path.text}: ")
            write(
                source, frame.ownership, path, value,
                done=_noting(source, frame, path), failed=_failed(source, why, "; not set"),
            )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _CopyOrMove:
    pairs: tuple[tuple[Path, Path], ...]  # target, source
    move: bool
    prefix: str

    def fields(self) -> frozenset[str]:
        return _first_keys(path for pair in self.pairs for path in pair)

    def emit(self, source: Source, frame: Frame) -> None:
        verb = "move" if self.move else "copy"
        for target, origin in self.pairs:
            where = f"{self.prefix}{verb} {origin.text} to {target.text}: "
            missing = source.name(f"{where}{origin.text} is missing; nothing to {verb}")
            with source.block(f"if not ({present(origin, source, '_v')})"):
                source.line(f"_adjust.append({missing})")
            with source.block("else"):
                if not self.move:
                    source.line("_v = _clone(_v)")
                why = source.name(where)

                def done(target: Path = target, origin: Path = origin) -> None:
                    if self.move:
                        _remove_found(source, frame, origin)
                    frame.wrote(source, target.keys[0])

                write(
                    source, frame.ownership, target, "_v",
                    done=done, failed=_failed(source, why, "; left as is"),
                )  # fmt: skip


def _noting(source: Source, frame: Frame, path: Path) -> Callable[[], None]:
    """The lines of a write that was done: the change noted."""

    def done() -> None:
        frame.wrote(source, path.keys[0])

    return done


def _failed(source: Source, why: str, tail: str) -> Callable[[], None]:
    """The lines of a write that could not be done: the adjustment `why`, the reason (`_e`)
    and `tail`."""

    def failed() -> None:
        source.line(f"_adjust.append({why} + str(_e) + {source.name(tail)})")

    return failed


def _remove_found(source: Source, frame: Frame, path: Path) -> None:
    """Lines removing the field at `path` (of a move), known to be there: it was just read, and
    writing the move's target (neither inside it nor holding it) left it where it was."""
    if path.plain:
        own_found(source, frame.ownership, path.parent_keys)
        source.line(f"del _h[{source.name(path.keys[-1], 'k')}]")
        if len(path.keys) == 1:
            frame.ownership.replaced(source, path.keys[0])
    else:
        source.line(f"_pop(_m, {source.name(path, 'p')}, {frame.ownership.owned})")
    frame.wrote(source, path.keys[0])


@dataclass(frozen=True, slots=True)
class _Remove:
    paths: tuple[Path, ...]

    def fields(self) -> frozenset[str]:
        return _first_keys(self.paths)

    def emit(self, source: Source, frame: Frame) -> None:
        for path in self.paths:
            if path.glob is not None:  # every key of the object that matches
                source.line(f"_x = {read_parent(path, source)}")
                with source.block("if _x.__class__ is dict"):
                    _select_keys(source, path)
                    with source.block("if _d"):
                        _own_object(source, frame.ownership, path, whole=False)
                        with source.block("for _k in _d"):
                            source.line("del _h[_k]")
                        frame.wrote(source, path.keys[0])
            elif path.plain and len(path.keys) == 1:
                key = source.name(path.keys[0], "k")
                with source.block(f"if {key} in _m"):
                    source.line(f"del _m[{key}]")
                    frame.ownership.replaced(source, path.keys[0])
                    frame.wrote(source, path.keys[0])
            elif path.plain:
                key = source.name(path.keys[-1], "k")
                source.line(f"_x = {read_parent(path, source)}")
                with source.block(f"if _x.__class__ is dict and {key} in _x"):
                    own_found(source, frame.ownership, path.parent_keys)
                    source.line(f"del _h[{key}]")
                    frame.wrote(source, path.keys[0])
            else:
                removed = f"_pop(_m, {source.name(path, 'p')}, {frame.ownership.owned})"
                with source.block(f"if {removed} is not _MISSING"):
                    frame.wrote(source, path.keys[0])


def _select_keys(source: Source, path: Path) -> None:
    """A line leaving in `_d` the keys of the object `_x` that the last key of `path` (a
    pattern) matches, as `path.glob(_x)` gives them, looked up by the object's keys."""
    assert path.glob is not None
    source.line(f"_d = {source.name(_KeyMatches(path.glob), 'matches')}[tuple(_x)]")


class _KeyMatches(dict[tuple[Any, ...], list[Any]]):
    """The keys of an object that a pattern matches, by the object's keys in order. Calls of one
    kind carry the same keys again and again, so the pattern is tested once per set of keys,
    not once per key of every call. Bounded: a set of keys past the first `_KEY_SETS`, or of
    more than `_KEYS_CACHED` keys, is matched each time. The lists are shared: read only."""

    __slots__ = ("_select",)

    def __init__(self, select: Callable[[Any], list[Any]]) -> None:
        super().__init__()
        self._select = select

    def __missing__(self, keys: tuple[Any, ...]) -> list[Any]:
        found = self._select(keys)
        if len(self) < _KEY_SETS and len(keys) <= _KEYS_CACHED:
            self[keys] = found
        return found


_KEY_SETS: Final = 128
_KEYS_CACHED: Final = 64


def _own_object(source: Source, ownership: Ownership, path: Path, *, whole: bool) -> None:
    """Lines leaving in `_h` the object holding the last key of `path` (with `whole`, the one at
    `path`), made the run's own; it was just read, so it is there."""
    if path.plain:
        own_found(source, ownership, path.keys if whole else path.parent_keys)
    else:
        where = source.name(path, "p")
        owned = ownership.owned
        source.line(f"_h = _container(_m, {where}, {owned}, create=False, whole={whole!r})")


def _unlisted(
    exact: frozenset[str], globs: tuple[Callable[[str], bool], ...]
) -> Callable[[dict[str, Any]], list[Any]]:
    """The keys of an object that `keep` removes: those neither listed nor matching a pattern."""
    if not globs:
        return lambda target: [key for key in target if key not in exact]
    return lambda target: [
        key for key in target if key not in exact and not any(matches(key) for matches in globs)
    ]


@dataclass(frozen=True, slots=True)
class _Keep:
    # path, the keys of its object to remove, and the names to keep when there is no pattern
    allow: tuple[tuple[Path, Callable[[dict[str, Any]], list[Any]], frozenset[str] | None], ...]
    prefix: str

    def fields(self) -> frozenset[str]:
        return _first_keys(path for path, _, _ in self.allow)

    def emit(self, source: Source, frame: Frame) -> None:
        for path, unlisted, exact in self.allow:
            why = source.name(f"{self.prefix}keep {path.text}: ")
            with source.block(f"if not ({present(path, source, '_x')})"):
                source.line("pass")  # nothing to keep from
            with source.block("elif _x.__class__ is not dict"):
                not_object = source.name(", not an object; left as is")
                source.line(f"_adjust.append({why} + _describe(_x) + {not_object})")
            with source.block("else"):
                if exact is not None:  # names only: a set difference (the order of removal
                    source.line(f"_d = _x.keys() - {source.name(exact, 'names')}")  # is moot)
                else:
                    source.line(f"_d = {source.name(unlisted, 'keep')}(_x)")
                with source.block("if _d"):
                    _own_object(source, frame.ownership, path, whole=True)
                    with source.block("for _k in _d"):
                        source.line("del _h[_k]")
                    frame.wrote(source, path.keys[0])


@dataclass(frozen=True, slots=True)
class _Transform:
    items: tuple[tuple[Path, tuple[Transform, ...], str], ...]  # path, transforms, their names
    prefix: str

    def fields(self) -> frozenset[str]:
        return _first_keys(path for path, _, _ in self.items)

    def emit(self, source: Source, frame: Frame) -> None:
        for path, transforms, names in self.items:
            where = f"{self.prefix}transform {path.text} ({names}): "
            with source.block(f"if not ({present(path, source, '_v')})"):
                source.line(f"_adjust.append({source.name(where + 'missing; left as is')})")
            with source.block("else"):
                with source.block("try"):
                    value = "_v"
                    for transform in transforms:  # in order: the first is innermost
                        value = f"{source.name(transform, 'tf')}({value})"
                    source.line(f"_v = {value}")
                    if path.plain:  # found through objects: they are all there
                        own_found(source, frame.ownership, path.parent_keys)
                        source.line(f"_h[{source.name(path.keys[-1], 'k')}] = _v")
                        if len(path.keys) == 1:
                            frame.ownership.replaced(source, path.keys[0])
                    else:
                        target = source.name(path, "p")
                        source.line(f"_put(_m, {target}, _v, {frame.ownership.owned})")
                with source.block("except ValueError as _e"):  # CannotApply is a ValueError
                    left = source.name("; left as is")
                    source.line(f"_adjust.append({source.name(where)} + str(_e) + {left})")
                with source.block("else"):
                    frame.wrote(source, path.keys[0])


@dataclass(frozen=True, slots=True)
class _Sample:
    salt: bytes
    threshold: int
    reason: str

    def fields(self) -> frozenset[str]:
        return frozenset(("userId", "anonymousId"))  # what `bucket` reads

    def emit(self, source: Source, frame: Frame) -> None:
        salt, threshold = source.name(self.salt), source.name(self.threshold)
        with source.block(f"if _bucket(_m, {salt}) >= {threshold}"):
            frame.drop(source, source.name(self.reason))


@dataclass(frozen=True, slots=True)
class _Function:
    step: Step
    number: int

    def fields(self) -> None:
        return None  # the function is handed the whole message

    def emit(self, source: Source, frame: Frame) -> None:
        frame.function(source, source.name(self.step, "function"), self.number)


def _first_keys(paths: Iterable[Path]) -> frozenset[str]:
    """The top-level fields under `paths` (a pattern of top-level keys is refused when the
    playbook is compiled, so each path names its field)."""
    return frozenset(path.keys[0] for path in paths)


def bucket(message: dict[str, Any], salt: bytes) -> int:
    """Where a person falls in [0, 2**64) for a sampling rule: a keyed hash of their userId
    (else anonymousId), so the same person always lands in the same place."""
    person = message.get("userId") or message.get("anonymousId") or ""
    text = person if isinstance(person, str) else str(person)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, key=salt)
    return int.from_bytes(digest.digest(), "big")


def _call_step(function: Function, spec: str, label: str) -> Step:
    where = f"playbook {label}: function {spec}"

    def call(message: dict[str, Any], run: Run) -> list[dict[str, Any]]:
        try:
            # Its own copy: the function may change anything, and the input is not the run's.
            result = function(copy.deepcopy(message))
        except Exception as exc:
            run.error = f"{where} raised:\n{user_traceback(exc)}"
            return []
        run.rewritten = True
        if isinstance(result, dict):
            return [result]
        if result is None or (isinstance(result, list) and not result):
            run.drops.append(f"{where} dropped it")
            return []
        if isinstance(result, list) and all(isinstance(item, dict) for item in result):
            return result
        run.error = (
            f"{where} returned {describe(result)}; expected the message (a dict), None (drop) "
            "or a list of messages"
        )
        return []

    return call


def _untomlable(value: Any) -> str | None:
    """Why `value` cannot be written in TOML (so could not round-trip to the file), or None."""
    if value is None:
        return "null is not a TOML value: use remove"
    if isinstance(value, float) and not math.isfinite(value):
        return None  # TOML has nan and inf
    if isinstance(value, list):
        return next((p for p in map(_untomlable, value) if p), None)
    if isinstance(value, dict):
        return next((p for p in map(_untomlable, value.values()) if p), None)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return f"{value} is beyond TOML's 64-bit integers"
    if not isinstance(value, str | int | float | bool):
        return f"{describe(value)} is not a value"
    return None
