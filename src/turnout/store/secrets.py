"""Secrets at rest: connection settings marked secret are Fernet-encrypted in the store.

The key comes from configuration (`[server] secret_key` / `TURNOUT_SECRET_KEY`) or is generated
once into the data directory, readable by its owner only. Whatever leaves the store for a person
to see (API, dashboard, logs) goes through `mask`.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

_PREFIX = "fernet:"


def load_or_create_key(data_dir: Path, configured: str | None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
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
