"""Fixtures shared by the playbook tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The functions the fuzzed playbooks may name (`function = "playbook_functions.py:split"`).
FUNCTIONS = '''
def same(message):
    return message

def split(message):
    return [message, dict(message), {"type": "track", "messageId": "m", "event": "Extra"}]

def nothing(message):
    return None

def boom(message):
    raise RuntimeError("boom")

def tag(message):
    message["event"] = "Tagged"
    return message
'''


@pytest.fixture(scope="module")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("functions")
    (directory / "playbook_functions.py").write_text(FUNCTIONS)
    return directory
