"""Stored calls written as fixtures for `turnout playbook test`: one call per file, named by its
messageId, so a call seen in `turnout trace` (or downloaded from the debugger) can be kept in git
beside the playbook and tried again on every change."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME: Final = 100


def fixture_name(message_id: str) -> str:
    """A file name for the call: its messageId with anything but letters, digits, `.`, `_`
    and `-` made `_`, at most 100 characters; never hidden, and never one `playbook test`
    would read as an expected result."""
    name = _UNSAFE.sub("_", message_id)[:_MAX_NAME].lstrip(".") or "call"
    if name.endswith(".expected"):
        name += "_"
    return name + ".json"


def write_fixture(directory: Path, message_id: str, call: dict[str, Any]) -> Path:
    """Write `call` (as stored) to `directory` as a fixture; its path."""
    path = directory / fixture_name(message_id)
    path.write_text(json.dumps(call, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path
