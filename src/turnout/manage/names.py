"""Rules for user-chosen names and keys, shared by the API schema and the dashboard forms.

Names appear in URLs, metrics labels and log lines, so they are kept to a plain, URL-safe set.
"""

from __future__ import annotations

import re
import secrets

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
WRITE_KEY_PATTERN = r"^[A-Za-z0-9_.-]{8,128}$"
WRITE_KEY_RULE = "8-128 letters, digits, '.', '_' or '-'"

# Path segments the dashboard uses beside /connections/{name}.
RESERVED = frozenset({"new", "check"})

_NAME = re.compile(NAME_PATTERN)
_WRITE_KEY = re.compile(WRITE_KEY_PATTERN)


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def valid_write_key(key: str) -> bool:
    return bool(_WRITE_KEY.match(key))


def new_write_key() -> str:
    return "wk_" + secrets.token_urlsafe(18)
