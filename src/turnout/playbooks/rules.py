"""One playbook rule: its `when` condition and its actions, validated and compiled into steps.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Final

from turnout.playbooks.conditions import ConditionError, Predicate, compile_when
from turnout.playbooks.errors import PlaybookError
from turnout.playbooks.functions import Function, load_function, user_traceback
from turnout.playbooks.paths import (
    MISSING,
    Path,
    clone,
    container,
    describe,
    get,
    glob_matcher,
    parse_path,
    pop,
    put,
)
from turnout.playbooks.transforms import CannotApply, Transform, chain, compile_transform

# Every key a rule may have, in the order its actions run (`name` and `when` first).
ACTIONS: Final = (
    "drop", "rename_event", "set", "copy", "move", "remove", "keep", "transform", "sample",
    "function",
)  # fmt: skip
KEYS: Final = ("name", "when", *ACTIONS)


class Run:
    """What applying a playbook to one message has produced so far."""

    __slots__ = (
        "adjustments", "changed", "drops", "error", "fields", "messages", "owned", "rules_applied",
    )  # fmt: skip

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.drops: list[str] = []
        self.rules_applied: list[str] = []
        self.adjustments: list[str] = []
        self.error: str | None = None
        self.changed = False
        # The top-level fields written or removed (None once a function has run: any may be).
        self.fields: set[str] | None = set()
        self.owned: set[int] = set()  # what the run may change in place (see paths.py)

    def wrote(self, field: str) -> None:
        """Note a change under the top-level `field`."""
        self.changed = True
        if self.fields is not None:
            self.fields.add(field)


# A step returns None to go on with the same message, or the messages that replace it: [] when
# it was dropped (the reason is in `Run.drops`), several when a function split it.
Step = Callable[[dict[str, Any], Run], list[dict[str, Any]] | None]


@dataclass(frozen=True, slots=True)
class Rule:
    number: int  # 1-based
    label: str  # `rule 2`, or `rule 2 "hash PII"` when named
    types: frozenset[str] | None  # the call types `when` allows (None: any)
    when: Predicate | None  # the rest of `when` (None: nothing more to test)
    steps: tuple[Step, ...]


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
    steps = [build.action(key, raw[key]) for key in ACTIONS if key in raw]
    if raw.get("drop") is True and len(steps) > 1:
        others = [key for key in ACTIONS if key in raw and key != "drop"]
        raise PlaybookError(
            f"drop = true ends the rule, so {', '.join(others)} would never run: move "
            f"{'them' if len(others) > 1 else 'it'} to another rule",
            rule=number, field="drop",
        )
    return Rule(number, label, types, when, tuple(step for step in steps if step is not None))


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

    def when(self, text: Any) -> tuple[frozenset[str] | None, Predicate | None]:
        if not isinstance(text, str):
            raise self.error(f"a condition is a string, got {describe(text)}", "when")
        try:
            return compile_when(text)
        except ConditionError as exc:
            raise PlaybookError(exc.message, rule=self.number, field="when", line=exc.line,
                                column=exc.column) from None

    def action(self, key: str, value: Any) -> Step | None:
        build: Callable[[Any], Step | None] = getattr(self, f"_{key}")
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

    def _drop(self, value: Any) -> Step | None:
        if not isinstance(value, bool):
            raise self.error(f"drop is true or false, got {describe(value)}", "drop")
        if not value:
            return None
        reason = f"playbook {self.label}: drop"

        def drop(message: dict[str, Any], run: Run) -> list[dict[str, Any]]:
            run.drops.append(reason)
            return []

        return drop

    def _rename_event(self, value: Any) -> Step:
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"rename_event is a non-empty string, got {value!r}", "rename_event")
        prefix = self.prefix

        def rename_event(message: dict[str, Any], run: Run) -> None:
            if isinstance(message.get("event"), str):
                message["event"] = value
                run.wrote("event")
            else:
                kind = message.get("type")
                run.adjustments.append(
                    f"{prefix}rename_event: the message has no event"
                    f"{f' (type {kind!r})' if isinstance(kind, str) else ''}; left as is"
                )

        return rename_event

    def _set(self, value: Any) -> Step:
        items: list[tuple[Path, Any, bool]] = []
        for key, constant in self.table(value, "set", '{ "properties.currency" = "USD" }').items():
            path = self.path(key, "set", write=True)
            problem = _untomlable(constant)
            if problem:
                raise self.error(f"{problem} (a playbook holds TOML values)", "set", key)
            items.append((path, constant, isinstance(constant, dict | list)))
        prefix = self.prefix

        def set_(message: dict[str, Any], run: Run) -> None:
            for path, constant, mutable in items:
                try:
                    put(message, path, clone(constant) if mutable else constant, run.owned)
                except ValueError as exc:
                    run.adjustments.append(f"{prefix}set {path.text}: {exc}; not set")
                else:
                    run.wrote(path.keys[0])

        return set_

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

    def _copy(self, value: Any) -> Step:
        return self._copy_or_move(self._pairs(value, "copy"), move=False)

    def _move(self, value: Any) -> Step:
        return self._copy_or_move(self._pairs(value, "move"), move=True)

    def _copy_or_move(self, pairs: list[tuple[Path, Path]], *, move: bool) -> Step:
        prefix = self.prefix
        verb = "move" if move else "copy"

        def copy_or_move(message: dict[str, Any], run: Run) -> None:
            for target, source in pairs:
                found = get(message, source)
                if found is MISSING:
                    run.adjustments.append(
                        f"{prefix}{verb} {source.text} to {target.text}: {source.text} is "
                        "missing; nothing to " + verb
                    )
                    continue
                try:
                    put(message, target, found if move else clone(found), run.owned)
                except ValueError as exc:
                    run.adjustments.append(
                        f"{prefix}{verb} {source.text} to {target.text}: {exc}; left as is"
                    )
                    continue
                if move:
                    pop(message, source, run.owned)
                    run.wrote(source.keys[0])
                run.wrote(target.keys[0])

        return copy_or_move

    def _remove(self, value: Any) -> Step:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts:
            raise self.error('remove is a list of paths: remove = ["traits.ssn"]', "remove")
        paths = [self.path(text, "remove", write=True, glob=True) for text in texts]

        def remove(message: dict[str, Any], run: Run) -> None:
            for path in paths:
                gone = pop(message, path, run.owned)
                if gone if path.glob is not None else gone is not MISSING:
                    run.wrote(path.keys[0])

        return remove

    def _keep(self, value: Any) -> Step:
        example = '{ "traits" = ["email", "name"] }'
        allow: list[tuple[Path, frozenset[str], tuple[Callable[[str], bool], ...]]] = []
        for key, names in self.table(value, "keep", example).items():
            path = self.path(key, "keep", write=True)
            if not isinstance(names, list) or not all(
                isinstance(name, str) and name for name in names
            ):
                raise self.error(f"keep lists the names to keep: keep = {example}", "keep", key)
            exact = frozenset(name for name in names if not set(name) & set("*?["))
            globs = [glob_matcher(name) for name in names if set(name) & set("*?[")]
            allow.append((path, exact, tuple(globs)))
        prefix = self.prefix

        def keep(message: dict[str, Any], run: Run) -> None:
            for path, exact, globs in allow:
                target = get(message, path)
                if target is MISSING:
                    continue
                if type(target) is not dict:
                    run.adjustments.append(
                        f"{prefix}keep {path.text}: {describe(target)}, not an object; left as is"
                    )
                    continue
                doomed = [
                    key for key in target
                    if key not in exact and not any(matches(key) for matches in globs)
                ]  # fmt: skip
                if doomed:
                    own = container(message, path, run.owned, create=False, whole=True)
                    assert isinstance(own, dict)  # the object just read, now the run's copy
                    for key in doomed:
                        del own[key]
                    run.wrote(path.keys[0])

        return keep

    def _transform(self, value: Any) -> Step:
        example = '{ "traits.email" = "lower" }'
        items: list[tuple[Path, Transform, str]] = []
        for key, spec in self.table(value, "transform", example).items():
            path = self.path(key, "transform", write=True)
            specs = spec if isinstance(spec, list) else [spec]
            if not specs:
                raise self.error("an empty list of transforms", "transform", key)
            try:
                transform = chain([compile_transform(each) for each in specs])
            except ValueError as exc:
                raise self.error(str(exc), "transform", key) from None
            items.append((path, transform, ", ".join(str(each) for each in specs)))
        prefix = self.prefix

        def transform_(message: dict[str, Any], run: Run) -> None:
            for path, transform, names in items:
                found = get(message, path)
                if found is MISSING:
                    run.adjustments.append(
                        f"{prefix}transform {path.text} ({names}): missing; left as is"
                    )
                    continue
                try:
                    put(message, path, transform(found), run.owned)
                except (CannotApply, ValueError) as exc:
                    run.adjustments.append(
                        f"{prefix}transform {path.text} ({names}): {exc}; left as is"
                    )
                else:
                    run.wrote(path.keys[0])

        return transform_

    def _sample(self, value: Any) -> Step:
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
        reason = f"playbook {self.label}: sampled out (sample = {value})"

        def sample(message: dict[str, Any], run: Run) -> list[dict[str, Any]] | None:
            if bucket(message, salt) < threshold:
                return None
            run.drops.append(reason)
            return []

        return sample

    def _function(self, value: Any) -> Step:
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
        return _call_step(function, str(value), self.label)


def bucket(message: dict[str, Any], salt: bytes) -> int:
    """Where a person falls in [0, 2**64) for a sampling rule: a keyed hash of their userId
    (else anonymousId), so the same person always lands in the same place."""
    person = message.get("userId") or message.get("anonymousId") or ""
    text = person if isinstance(person, str) else str(person)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, key=salt)
    return int.from_bytes(digest.digest(), "big")


def _call_step(function: Function, spec: str, label: str) -> Step:
    where = f"playbook {label}: function {spec}"

    def call(message: dict[str, Any], run: Run) -> list[dict[str, Any]] | None:
        try:
            # Its own copy: the function may change anything, and the input is not the run's.
            result = function(copy.deepcopy(message))
        except Exception as exc:
            run.error = f"{where} raised:\n{user_traceback(exc)}"
            return []
        run.changed, run.fields = True, None
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
