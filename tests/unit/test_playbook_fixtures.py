"""A stored call's fixture file name: safe in any directory, and never taken for something else
by `turnout playbook test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnout.playbooks.fixtures import fixture_name, write_fixture


@pytest.mark.parametrize(
    ("message_id", "name"),
    [
        ("ajs-next-1f2e", "ajs-next-1f2e.json"),
        ("../../etc/passwd", "_.._etc_passwd.json"),
        ("..hidden", "hidden.json"),
        ("...", "call.json"),
        ("", "call.json"),
        ("order.expected", "order.expected_.json"),
        ("a b/c\\d:é", "a_b_c_d__.json"),
        ("x" * 300, "x" * 100 + ".json"),
    ],
)
def test_fixture_names(message_id: str, name: str) -> None:
    assert fixture_name(message_id) == name


def test_a_fixture_holds_the_call_as_stored(tmp_path: Path) -> None:
    call = {"type": "track", "messageId": "m/1", "event": "Café", "properties": {"b": 1, "a": 2}}
    path = write_fixture(tmp_path, "m/1", call)
    assert path == tmp_path / "m_1.json"
    assert path.read_text() == json.dumps(call, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert json.loads(path.read_text()) == call
