"""Secrets at rest: connection settings marked secret are Fernet-encrypted in the store.

The key comes from configuration (`[server] secret_key` / `TURNOUT_SECRET_KEY`) or is generated
once into the data directory (which `turnout.datadir.prepare` has made), readable by its owner
only. Whatever leaves the store for a person to see (API, dashboard, logs) goes through `mask`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from turnout.datadir import create_private

_PREFIX = "fernet:"


def load_or_create_key(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    key = Fernet.generate_key()
    if not create_private(path, key):
        return path.read_bytes().strip()
    return key


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: str) -> str:
        return _PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(_PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted: the secret key changed"
            ) from None


def mask(value: str | None) -> str:
    """Show enough to recognise a secret, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * 8
    return value[:2] + "•" * 8 + value[-2:]


def each_secret(
    settings: dict[str, Any], secret: frozenset[str], change: Callable[[str], str]
) -> dict[str, Any]:
    """`settings` with `change` applied to every non-empty secret string: the value of each
    secret field, or each value of a secret field that holds a table (a webhook's headers: the
    names stay readable, the values are secret)."""

    def one(value: Any) -> Any:
        return change(value) if isinstance(value, str) and value else value

    return {
        key: (
            value
            if key not in secret
            else {name: one(v) for name, v in value.items()}
            if isinstance(value, dict)
            else one(value)
        )
        for key, value in settings.items()
    }
