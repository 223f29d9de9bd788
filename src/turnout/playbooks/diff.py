"""Playbooks as canonical TOML, and the difference between two of them as a unified diff.

One playbook always prints the same way: each rule as a `[[playbook]]` table, its keys in the
order its actions run, each entry of a table-valued action (`set`, `transform`...) on a line of
its own, so that a diff between two revisions shows exactly the entries that changed. Entries of
those tables keep their order, which is the order they run in.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any, Final

from turnout.playbooks.rules import KEYS

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_LITERAL_UNSAFE: Final = re.compile(r"['\x00-\x08\x0a-\x1f\x7f]")


def canonical_toml(rules: list[dict[str, Any]], table: str = "playbook") -> str:
    """The rules as TOML, each a `[[table]]` (use `connections.playbook` for a configuration
    file's connection)."""
    blocks = []
    for rule in rules:
        if not isinstance(rule, dict):
            blocks.append(f"[[{table}]]\n# not a table: {json.dumps(rule, default=str)}\n")
            continue
        keys = sorted(rule, key=lambda key: (KEYS.index(key) if key in KEYS else len(KEYS), key))
        scalars = [key for key in keys if not isinstance(rule[key], dict)]
        tables = [key for key in keys if isinstance(rule[key], dict)]
        lines = [f"[[{table}]]"]
        lines += [f"{_key(key)} = {_value(rule[key])}" for key in scalars]
        for key in tables:
            lines.append(f"[{table}.{_key(key)}]")
            lines += [f"{_key(entry)} = {_value(value)}" for entry, value in rule[key].items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def describe_diff(
    old_rules: list[dict[str, Any]],
    new_rules: list[dict[str, Any]],
    old_label: str = "before",
    new_label: str = "after",
) -> str:
    """A unified diff of two playbooks as canonical TOML; empty when they are the same."""
    old = canonical_toml(old_rules).splitlines(keepends=True)
    new = canonical_toml(new_rules).splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, fromfile=old_label, tofile=new_label))


def _key(key: Any) -> str:
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else _basic(text)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # A string with quotes or backslashes reads best as a literal (`when = 'type = "x"'`).
        if ('"' in value or "\\" in value) and not _LITERAL_UNSAFE.search(value):
            return f"'{value}'"
        return _basic(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    # Not a TOML value (null from JSON): shown as JSON, so the difference is still visible.
    return json.dumps(value, default=str)


def _basic(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also escapes DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
