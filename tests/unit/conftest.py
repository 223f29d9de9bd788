"""Fixtures shared by unit tests: a real SQLite state store, and the functions fuzzed
playbooks may name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from turnout.store.secrets import SecretBox
from turnout.store.sqlite import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An empty state store in its own file, with a fresh secret key."""
    made = Store(tmp_path / "store.db", SecretBox(Fernet.generate_key()), lambda _: frozenset())
    await made.start()
    yield made
    await made.close()


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
