"""Reading and writing a field path, written as code (see codegen.py for why that is safe).

The lines do what `paths.get`, `paths.put` and `paths.pop` do, inline for paths through objects
(`traits.email`, `context.app.environment`), and call those functions for anything else (a path
through a list, a write that cannot be done, which they explain). Writes are copy-on-write, as
in paths.py: the generated function's locals are the message `_m` (its top level is the run's
own), what `Ownership` keeps, and the temporaries `_h`, `_x`, `_t`, `_e`; each statement uses
them only right after assigning them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from turnout.playbooks.codegen import Source
from turnout.playbooks.paths import Path, container, pop, put

_FAIL: Final = object()  # `_h` when a write cannot be done inline

NAMESPACE: Final = {"_FAIL": _FAIL, "_put": put, "_pop": pop, "_container": container}


def read(path: Path, source: Source, message: str = "_m") -> str:
    """An expression for the value at `path` in `message`, or _MISSING; it may assign `_t`.
    Paths of one to three keys through objects (the usual ones) are read inline."""
    return _read(path.keys, path.indexes, path.read, source, message)


def read_parent(path: Path, source: Source) -> str:
    """An expression for the value holding the last key of `path` (the message itself for a
    path of one key), or _MISSING."""
    return _read(path.keys[:-1], path.indexes[:-1], path.read_parent, source, "_m")


def present(path: Path, source: Source, variable: str) -> str:
    """An expression true when the field at `path` is there (null included), which then leaves
    its value in `variable`: paths through objects read inline, as a chain of tests."""
    names = [source.name(key, "k") for key in path.keys]
    if path.indexes == (None,):
        return f"({variable} := _m.get({names[0]}, _MISSING)) is not _MISSING"
    if path.indexes == (None, None):
        return (
            f"(_t := _m.get({names[0]})).__class__ is dict and "
            f"({variable} := _t.get({names[1]}, _MISSING)) is not _MISSING"
        )
    if path.indexes == (None, None, None):
        return (
            f"(_t := _m.get({names[0]})).__class__ is dict"
            f" and (_t := _t.get({names[1]})).__class__ is dict"
            f" and ({variable} := _t.get({names[2]}, _MISSING)) is not _MISSING"
        )
    return f"({variable} := {read(path, source)}) is not _MISSING"


def found_and(path: Path, source: Source, test: Callable[[str], str]) -> str:
    """An expression true when the field at `path` is there and `test` holds of it, for tests
    that a missing field fails: `test` is given an expression for the value, which may be None
    or _MISSING when the field is not there (so `test` must fail for both). Paths of one to
    three keys through objects are read as a chain of tests, with no _MISSING to make."""
    names = [source.name(key, "k") for key in path.keys]
    if path.indexes == (None,):
        return f"({test(f'_m.get({names[0]})')})"
    if path.indexes == (None, None):
        return f"((_t := _m.get({names[0]})).__class__ is dict and {test(f'_t.get({names[1]})')})"
    if path.indexes == (None, None, None):
        return (
            f"((_t := _m.get({names[0]})).__class__ is dict"
            f" and (_t := _t.get({names[1]})).__class__ is dict and {test(f'_t.get({names[2]})')})"
        )
    return f"({test(read(path, source))})"


def _read(
    keys: tuple[str, ...],
    indexes: tuple[int | None, ...],
    reader: Callable[[object], object],
    source: Source,
    message: str,
) -> str:
    names = [source.name(key, "k") for key in keys]
    if not keys:
        return message
    if indexes == (None,):
        return f"{message}.get({names[0]}, _MISSING)"
    if indexes == (None, None):
        return (
            f"(_t.get({names[1]}, _MISSING) if (_t := {message}.get({names[0]})).__class__ is dict "
            "else _MISSING)"
        )
    if indexes == (None, None, None):
        return (
            f"((_t.get({names[2]}, _MISSING) if (_t := _t.get({names[1]})).__class__ is dict else "
            f"_MISSING) if (_t := {message}.get({names[0]})).__class__ is dict else _MISSING)"
        )
    return f"{source.name(reader, 'read')}({message})"


class Ownership:
    """Which objects the code of one generated function must test, or note, as the run's own.

    Copy-on-write needs a test only where an earlier statement of the function may already have
    copied (or created) the object, and a note only where a later one may test it: copying an
    object the run owns is wasteful, never wrong. So the function is written twice: the first
    time records, in order, each object a statement makes the run's own (`events`, by its keys);
    the second writes a test before the copy only after an earlier event at the same keys, and a
    note only before a later one. An object at the top level is noted in a local flag, deeper
    ones by id in `_owned`, the set `paths.put` and friends also use (they copy what is not in
    it, which is again never wrong). A flag is cleared wherever its field is written whole.
    """

    def __init__(self, events: list[tuple[str, ...]] | None = None) -> None:
        self.recording = events is None
        self.events: list[tuple[str, ...]] = [] if events is None else events
        self._position = 0
        self.flags: dict[str, str] = {}  # top-level key -> the local flag of its object
        self.owned_set = False  # whether the function needs `_owned`
        self._decisions: list[tuple[bool, bool]] = []  # (test, note) of each event, in order
        if events is not None:
            seen: dict[tuple[str, ...], int] = {}
            for keys in events:
                seen[keys] = seen.get(keys, 0) + 1
            for number, (keys, count) in enumerate(seen.items()):
                if count > 1 and len(keys) == 1:
                    self.flags[keys[0]] = f"_o{number}"
                elif count > 1:
                    self.owned_set = True
            before: dict[tuple[str, ...], int] = {}
            for keys in events:
                earlier = before.get(keys, 0)
                self._decisions.append((earlier > 0, earlier + 1 < seen[keys]))
                before[keys] = earlier + 1

    @property
    def owned(self) -> str:
        """What to hand `paths.put` and friends as the run's objects."""
        return "_owned" if self.owned_set else "set()"

    def prologue(self, source: Source) -> None:
        """The lines that start the function's bookkeeping."""
        for flag in self.flags.values():
            source.line(f"{flag} = False")
        if self.owned_set:
            source.line("_owned = set()")

    def _event(self, keys: tuple[str, ...]) -> tuple[bool, bool]:
        """(test, note) for the next event, at `keys`."""
        if self.recording:
            self.events.append(keys)
            return True, True
        position = self._position
        self._position += 1
        assert self.events[position] == keys  # the same statements, in the same order
        return self._decisions[position]

    def _not_owned(self, keys: tuple[str, ...]) -> str:
        if len(keys) == 1:
            return f"not {self.flags[keys[0]]}"
        return "id(_x) not in _owned"

    def _note(self, source: Source, keys: tuple[str, ...]) -> None:
        if len(keys) == 1:
            source.line(f"{self.flags[keys[0]]} = True")
        else:
            source.line("_owned.add(id(_x))")

    def event(self, keys: tuple[str, ...]) -> tuple[bool, bool]:
        """The next statement makes the object at `keys` the run's own: whether it must test
        that the run owns it already, and whether it must note it. (While recording: both.)"""
        test, note = self._event(keys)
        return test and not self.recording, note and not self.recording

    def copy(
        self, source: Source, keys: tuple[str, ...], holder: str, key: str, event: tuple[bool, bool]
    ) -> None:
        """Lines making `_x`, the object at `keys` (held by `holder` under `key`), the run's
        own: a copy put in its place, unless the run owns it already."""
        test, note = event
        with source.guard(self._not_owned(keys) if test else None):
            source.line("_x = _x.copy()")
            source.line(f"{holder}[{key}] = _x")
            if note:
                self._note(source, keys)

    def created(self, source: Source, keys: tuple[str, ...], event: tuple[bool, bool]) -> None:
        """Notes `_x`, an object just created at `keys`, as the run's own when needed."""
        if event[1]:
            self._note(source, keys)

    def replaced(self, source: Source, key: str) -> None:
        """The top-level field `key` was written or removed whole: its object is not known to
        be the run's own any more."""
        flag = self.flags.get(key)
        if flag is not None:
            source.line(f"{flag} = False")


def own_found(source: Source, ownership: Ownership, keys: tuple[str, ...]) -> None:
    """Lines leaving in `_h` the object `keys` lead to, made the run's own: each object on the
    way that is not yet is copied (shallowly) and put in its place. Only for keys just read
    through objects (a plain path that was found), so every step is known to be an object."""
    holder = "_m"
    for depth, key in enumerate(keys, 1):
        name = source.name(key, "k")
        source.line(f"_x = {holder}[{name}]")
        ownership.copy(source, keys[:depth], holder, name, ownership.event(keys[:depth]))
        source.line("_h = _x")
        holder = "_h"
    if not keys:
        source.line("_h = _m")


def write(
    source: Source,
    ownership: Ownership,
    path: Path,
    value: str,
    done: Callable[[], None],
    failed: Callable[[], None],
) -> None:
    """Lines writing the local `value` at `path` as `paths.put` does (creating missing objects,
    copying shared ones), then the lines of `done`; where `put` raises ValueError, the lines of
    `failed` instead, with the exception in `_e`."""
    target = source.name(path, "p")
    if not path.plain:
        _write_by_put(source, ownership, target, value, done, failed)
        return
    # Objects all the way: the fast way, as `paths.put` tries it first.
    if not path.parent_keys:  # a top-level field: the message is the run's own
        source.line(f"_m[{source.name(path.keys[-1], 'k')}] = {value}")
        ownership.replaced(source, path.keys[-1])
        done()
        return
    holder = "_m"
    for depth, key in enumerate(path.parent_keys, 1):
        name = source.name(key, "k")
        keys = path.parent_keys[:depth]
        event = ownership.event(keys)  # one for both ways: copied, or created
        with source.guard("_h is not _FAIL" if depth > 1 else None):
            source.line(f"_x = {holder}.get({name})")
            with source.block("if _x.__class__ is dict"):
                ownership.copy(source, keys, holder, name, event)
                source.line("_h = _x")
            with source.block(f"elif _x is None and {name} not in {holder}"):
                source.line("_x = {}")
                source.line(f"{holder}[{name}] = _x")
                ownership.created(source, keys, event)
                source.line("_h = _x")
            with source.block("else"):
                source.line("_h = _FAIL")
        holder = "_h"
    with source.block("if _h is not _FAIL"):
        source.line(f"_h[{source.name(path.keys[-1], 'k')}] = {value}")
        done()
    with source.block("else"):
        _write_by_put(source, ownership, target, value, done, failed)


def _write_by_put(
    source: Source,
    ownership: Ownership,
    target: str,
    value: str,
    done: Callable[[], None],
    failed: Callable[[], None],
) -> None:
    with source.block("try"):
        source.line(f"_put(_m, {target}, {value}, {ownership.owned})")
    with source.block("except ValueError as _e"):
        failed()
    with source.block("else"):
        done()
