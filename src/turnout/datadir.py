"""The data directory: created private, kept private.

It holds every event (`log.db`), the sources' write keys and the connections' secrets
(`store.db`), the admin token and the key that decrypts the secrets, so only the user running
Turnout may read it: the directory is 0700 and every file Turnout makes in it 0600. SQLite
creates a database's `-wal`, `-shm` and `-journal` files with the mode of the database file
itself, so creating each database file 0600 before SQLite opens it covers those too.

A directory or file left looser (by an older version, a restored backup, a permissive umask) is
tightened at start, with a warning naming each change: the data in it stays usable and stops
being readable by others. The two files that decide who administers Turnout and who can decrypt
its secrets, `admin.token` and `secret.key`, are refused instead when someone else could have
written them (owned by another user, or writable by group or others): tightening would keep a
value someone else may have chosen.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from turnout.config import ConfigError

logger = logging.getLogger("turnout")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
OTHERS = 0o077  # every permission of group and others
# Files whose content decides who is trusted; refused rather than tightened when others could
# have written them.
GUARDED = ("admin.token", "secret.key")


def prepare(directory: Path) -> None:
    """Create `directory` private, or make an existing one private again; refuse a guarded
    file someone else could have written. Raises `ConfigError` naming the path."""
    try:
        directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"server.data_dir: cannot create {directory}: {exc.strerror or exc}"
        ) from None
    if not directory.is_dir():
        raise ConfigError(f"server.data_dir: {directory} exists and is not a directory")
    for name in GUARDED:
        _refuse_if_others_could_write(directory / name)
    _tighten(directory, "data directory")
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and not entry.is_symlink():
            _tighten(entry, "file")


def create_private(path: Path, content: bytes = b"") -> bool:
    """Create `path` with `content`, readable and writable by its owner only (0600).

    False, and nothing written, when it exists already: created with `O_EXCL`, so the file
    never exists with a looser mode, not even for an instant.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return True


def _refuse_if_others_could_write(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    user = os.geteuid()
    if info.st_uid != user:
        raise ConfigError(
            f"{path}: owned by uid {info.st_uid}, not by the user running Turnout (uid {user});"
            f" someone else may have chosen its content. Check it, then run:"
            f" chown {user} {path} && chmod 600 {path}"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{path}: writable by group or others (mode {_mode(info.st_mode)});"
            f" someone else may have chosen its content. Check it, then run: chmod 600 {path}"
        )


def _tighten(path: Path, what: str) -> None:
    """Take every permission of group and others away; the owner's stay as they are."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & OTHERS:
        return
    wanted = mode & ~OTHERS
    try:
        path.chmod(wanted)
    except OSError as exc:
        raise ConfigError(
            f"{path}: open to other users (mode {_mode(mode)}) and cannot be made private:"
            f" {exc.strerror or exc}; run: chmod {_mode(wanted)} {path}"
        ) from None
    logger.warning(
        "%s %s was open to other users (mode %s): changed to %s",
        what,
        path,
        _mode(mode),
        _mode(wanted),
    )


def _mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"
