"""Field paths (`properties.total`, `context.page.url`, `properties.products.0.sku`): parsed once
when a playbook is compiled. The generated code reads and writes the usual paths inline
(pathcode.py); the functions here do it for any path, and say why a write cannot be done.

A path is the message's Segment (camelCase) field names joined by dots. A backslash makes the
next character part of the name (`properties.a\\.b` is the key `a.b` of `properties`), and a
segment of digits also indexes a list. Every walk tolerates whatever shape a message has: a path
through a missing field, a string or a number simply finds nothing.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

MISSING: Final = object()  # what `get` finds at a path that leads nowhere

# Fields no action may write or remove: the call's type decides how every destination maps it,
# and its messageId is the identity every retry and deduplication relies on.
PROTECTED: Final = frozenset({"type", "messageId"})

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path: `keys` as written, `indexes` the int of each all-digit key (else None),
    and readers of the value at the path and of the object holding its last key."""

    text: str
    keys: tuple[str, ...]
    indexes: tuple[int | None, ...]
    glob: Callable[[dict[str, Any]], list[str]] | None  # an object's keys matching the pattern
    # of the last key (`internal_*`), when it is one
    read: Callable[[Any], Any]
    read_parent: Callable[[Any], Any]
    plain: bool  # no key that could index a list: every step is an object's key
    parent_keys: tuple[str, ...]  # the keys leading to the object holding the last one
    pattern: str | None = None  # the fnmatch pattern of the last key, when `glob` is set

    @property
    def protected(self) -> bool:
        """Whether writing here would change the call's type or identity."""
        return self.keys[0] in PROTECTED or (len(self.keys) == 1 and self.glob is not None)

    def contains(self, other: Path) -> bool:
        """Whether `other` is this path or lies inside it."""
        return other.keys[: len(self.keys)] == self.keys


def parse_path(text: str, *, glob: bool = False) -> Path:
    """Parse `text`; raises ValueError naming the problem. With `glob`, the last key may hold
    fnmatch wildcards (`*`, `?`, `[...]`), matched case-sensitively against an object's keys."""
    if not isinstance(text, str):
        raise ValueError(f"a path must be a string, got {type(text).__name__}")
    if not text:
        raise ValueError("a path may not be empty")
    keys: list[str] = []
    patterns: list[str | None] = []  # a key's fnmatch pattern, when it has wildcards
    current: list[str] = []
    pattern: list[str] = []  # the same key with escaped wildcards bracketed: `\\*` -> `[*]`
    wild = False
    chars = iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, None)
            if nxt is None:
                raise ValueError(f"path {text!r} ends with a lone backslash")
            current.append(nxt)
            pattern.append(f"[{nxt}]" if nxt in _GLOB_CHARS else nxt)
        elif char == ".":
            keys.append(_key(text, current))
            patterns.append("".join(pattern) if wild else None)
            current, pattern, wild = [], [], False
        else:
            wild = wild or char in _GLOB_CHARS
            current.append(char)
            pattern.append(char)
    keys.append(_key(text, current))
    patterns.append("".join(pattern) if wild else None)
    if any(patterns[:-1]) or (patterns[-1] and not glob):
        where = "only in the last part of a remove path" if glob else "not in this path"
        raise ValueError(f"path {text!r}: wildcards (*, ?, [) are allowed {where}")
    last = patterns[-1]
    compiled = glob_selector(last) if last is not None else None
    indexes = tuple(int(key) if key.isdigit() and key.isascii() else None for key in keys)
    return Path(
        text, tuple(keys), indexes, compiled, reader(tuple(keys), indexes),
        reader(tuple(keys[:-1]), indexes[:-1]), all(index is None for index in indexes),
        tuple(keys[:-1]), last,
    )  # fmt: skip


def glob_shape(pattern: str) -> tuple[str, Any]:
    """How to test an fnmatch pattern (case-sensitive): the usual shapes are string methods,
    several times faster than a regex: ("prefix", "internal_") for `internal_*`, likewise
    "suffix", "infix", "exact" and ("all", None); else ("regex", compiled pattern)."""
    body = pattern.strip("*")
    if not set(body) & _GLOB_CHARS:
        leading, trailing = pattern.startswith("*"), pattern.endswith("*")
        if not body:
            return ("all", None) if pattern else ("exact", "")
        if leading and trailing:
            return "infix", body
        if trailing:
            return "prefix", body
        if leading:
            return "suffix", body
        return "exact", body
    return "regex", re.compile(fnmatch.translate(pattern))


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a string matches `pattern` (see `glob_shape`)."""
    kind, body = glob_shape(pattern)
    if kind == "all":
        return lambda text: True
    if kind == "prefix":
        return lambda text: text.startswith(body)
    if kind == "suffix":
        return lambda text: text.endswith(body)
    if kind == "infix":
        return lambda text: body in text
    if kind == "exact":
        return lambda text: text == body
    return lambda text: body.match(text) is not None


def glob_selector(pattern: str) -> Callable[[dict[str, Any]], list[str]]:
    """The keys of an object that match `pattern`, in one pass (no call per key)."""
    kind, body = glob_shape(pattern)
    if kind == "all":
        return lambda obj: list(obj)
    if kind == "prefix":
        return lambda obj: [key for key in obj if type(key) is str and key.startswith(body)]
    if kind == "suffix":
        return lambda obj: [key for key in obj if type(key) is str and key.endswith(body)]
    if kind == "infix":
        return lambda obj: [key for key in obj if type(key) is str and body in key]
    if kind == "exact":
        return lambda obj: [body] if body in obj else []
    match = body.match
    return lambda obj: [key for key in obj if type(key) is str and match(key) is not None]


def _key(text: str, chars: list[str]) -> str:
    if not chars:
        raise ValueError(f"path {text!r} has an empty part (two dots, or a dot at an end)")
    return "".join(chars)


def reader(keys: tuple[str, ...], indexes: tuple[int | None, ...]) -> Callable[[Any], Any]:
    """A function reading the value `keys` lead to (MISSING when absent), specialised for the
    short paths conditions and actions read in every message: the hot loop."""
    if not keys:
        return lambda message: message
    if indexes == (None,):
        key = keys[0]
        return lambda message: message.get(key, MISSING)
    if indexes == (None, None):
        first, second = keys

        def get2(message: dict[str, Any]) -> Any:
            inner = message.get(first)
            return inner.get(second, MISSING) if type(inner) is dict else MISSING

        return get2
    if indexes == (None, None, None):
        one, two, three = keys

        def get3(message: dict[str, Any]) -> Any:
            inner = message.get(one)
            if type(inner) is not dict:
                return MISSING
            inner = inner.get(two)
            return inner.get(three, MISSING) if type(inner) is dict else MISSING

        return get3
    return lambda message: walk(message, keys, indexes)


def walk(current: Any, keys: tuple[str, ...], indexes: tuple[int | None, ...]) -> Any:
    """The value `keys` lead to from `current` (a list item where the key is a number), or
    MISSING."""
    for key, index in zip(keys, indexes, strict=False):  # equal lengths: parsed together
        if type(current) is dict:
            current = current.get(key, MISSING)
            if current is MISSING:
                return MISSING
        elif type(current) is list and index is not None and index < len(current):
            current = current[index]
        else:
            return MISSING
    return current


# -- writing, copy-on-write ------------------------------------------------------------------------
#
# Applying a playbook never changes the message it was given, nor anything inside it: the dict it
# gets shares its nested objects with the stored message (no deep copy per message). A write
# copies (shallowly) each object on its path the first time it writes under it, and `owned`
# holds the ids of the objects the run copied or created: those it may change in place. The top
# level is always the run's own.


def container(
    message: dict[str, Any], path: Path, owned: set[int], *, create: bool, whole: bool = False
) -> dict[str, Any] | list[Any]:
    """The object or list holding the last key of `path` (with `whole`, the one at `path`),
    made the run's own; with `create`, missing objects on the way are created. ValueError says
    why there is none."""
    if path.plain:  # objects all the way (`properties.x`, `context.app.name`): the fast way
        found = _own_objects(message, path.keys if whole else path.parent_keys, owned, create)
        if found is not None:
            return found
    current: Any = message
    depth = len(path.keys) if whole else len(path.keys) - 1
    for position in range(depth):
        key, index = path.keys[position], path.indexes[position]
        if type(current) is dict:
            slot: Any = key
            child = current.get(key, MISSING)
        elif index is not None and index < len(current):
            slot, child = index, current[index]
        else:
            child = MISSING
        if child is MISSING:
            if not create or type(current) is not dict:
                raise ValueError(f"{_prefix(path, position)} is missing")
            child = current[key] = {}
            owned.add(id(child))
        elif type(child) is dict or type(child) is list:
            if id(child) not in owned:
                child = current[slot] = child.copy()
                owned.add(id(child))
        else:
            raise ValueError(f"{_prefix(path, position)} is {describe(child)}, not an object")
        current = child
    return current


def _own_objects(
    message: dict[str, Any], keys: tuple[str, ...], owned: set[int], create: bool
) -> dict[str, Any] | None:
    """The object `keys` lead to, made the run's own on the way, when every step is an object
    (or missing, with `create`); None otherwise, for the general walk to say why."""
    current = message
    for key in keys:
        child = current.get(key)
        if type(child) is dict:
            if id(child) not in owned:
                child = current[key] = child.copy()
                owned.add(id(child))
        elif create and child is None and key not in current:
            child = current[key] = {}
            owned.add(id(child))
        else:
            return None
        current = child
    return current


def _prefix(path: Path, depth: int) -> str:
    return ".".join(path.keys[: depth + 1])


def put(message: dict[str, Any], path: Path, value: Any, owned: set[int]) -> None:
    """Write `value` at `path`, creating missing objects; ValueError when it cannot."""
    holder = container(message, path, owned, create=True)
    if isinstance(holder, dict):
        holder[path.keys[-1]] = value
        return
    index = path.indexes[-1]
    if index is None or index >= len(holder):
        raise ValueError(f"{path.text}: no such item in a list of {len(holder)}")
    holder[index] = value


def pop(message: dict[str, Any], path: Path, owned: set[int]) -> Any:
    """Remove and return the value at `path` (MISSING when there is none). With a pattern path,
    remove every matching key of the object and return how many went."""
    if path.glob is not None:
        found = path.read_parent(message)
        if type(found) is not dict:
            return 0
        doomed = path.glob(found)
        if doomed:
            # The object just read, now the run's copy.
            obj = cast(dict[str, Any], container(message, path, owned, create=False))
            for key in doomed:
                del obj[key]
        return len(doomed)
    if path.read(message) is MISSING:  # nothing to remove: copy nothing
        return MISSING
    parent = container(message, path, owned, create=False)
    if isinstance(parent, dict):
        return parent.pop(path.keys[-1])
    return parent.pop(path.indexes[-1] or 0)  # an item it found: its index is a number


def clone(value: Any) -> Any:
    """A copy that shares nothing mutable with `value`: a constant or a copied field must not
    change when the message it went into is changed later."""
    if type(value) is dict or type(value) is list:
        return copy.deepcopy(value)
    return value


def describe(value: Any) -> str:
    """How an adjustment names a value's type: `a number`, `a string`, `null`..."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
