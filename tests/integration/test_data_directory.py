"""The data directory holds every event, the write keys, the admin token and the secret key: a
real `turnout serve` makes it readable by its user only, keeps it so, and refuses to trust a key
file someone else could have written."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import create_schema, delete_stream, drop_schema, require_nats, unique
from support import TurnoutProcess, free_port, wait_until

PRIVATE_FILES = [
    "admin.token",
    "log.db",
    "log.db-shm",
    "log.db-wal",
    "secret.key",
    "store.db",
    "store.db-shm",
    "store.db-wal",
]


@contextlib.contextmanager
def permissive_umask() -> Iterator[None]:
    """Processes started inside inherit umask 022, the usual default that makes files 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def config_file(directory: Path, data: Path, extra: str = "") -> Path:
    """A configuration with no admin token and no secret key: both are generated into `data`."""
    path = directory / "turnout.toml"
    path.write_text(f'[server]\nlisten = "127.0.0.1:{free_port()}"\ndata_dir = "{data}"\n{extra}')
    return path


def modes(directory: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in sorted(directory.iterdir())}


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_first_start_makes_the_directory_and_every_file_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with permissive_umask(), TurnoutProcess(config_file(tmp_path, data)) as turnout:
        # The write-ahead files exist while the databases are open.
        wait_until(lambda: sorted(os.listdir(data)) == PRIVATE_FILES, what="every data file")
        assert mode(data) == "0o700"
        assert modes(data) == {name: "0o600" for name in PRIVATE_FILES}
        token = (data / "admin.token").read_text()
        assert f"(generated, kept in {data / 'admin.token'}): {token}" in (
            turnout.output.read_text()
        )


def test_a_directory_left_open_is_made_private_again_with_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = config_file(tmp_path, data)
    with permissive_umask():
        TurnoutProcess(config).start().stop()
        data.chmod(0o755)
        (data / "store.db").chmod(0o644)
        (data / "admin.token").chmod(0o640)  # readable, not writable, by the group: tightened
        with TurnoutProcess(config) as turnout:
            assert mode(data) == "0o700"
            assert mode(data / "store.db") == "0o600"
            assert mode(data / "admin.token") == "0o600"
            warnings = re.findall(r"WARNING turnout: (.*)", turnout.output.read_text())
    assert warnings == [
        f"data directory {data} was open to other users (mode 0755): changed to 0700",
        f"file {data / 'admin.token'} was open to other users (mode 0640): changed to 0600",
        f"file {data / 'store.db'} was open to other users (mode 0644): changed to 0600",
    ]


@pytest.mark.parametrize("name", ["admin.token", "secret.key"])
def test_a_key_file_others_could_write_is_refused(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    path = data / name
    path.write_text("chosen-by-someone-else")
    path.chmod(0o664)
    result = serve(config_file(tmp_path, data))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}: writable by group or others (mode 0664); someone else may have chosen"
        f" its content. Check it, then run: chmod 600 {path}"
    )
    assert sorted(os.listdir(data)) == [name]  # nothing else was created


def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    path = data / "admin.token"
    path.write_text("adm_chosen-by-someone-else")
    path.chmod(0o600)
    os.chown(path, 4321, 4321)
    result = serve(config_file(tmp_path, data))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}: owned by uid 4321, not by the user running Turnout (uid 0); someone"
        f" else may have chosen its content. Check it, then run: chown 0 {path} && chmod 600"
        f" {path}"
    )


@pytest.mark.services
def test_postgres_and_nats_with_a_missing_data_dir_create_it_private(tmp_path: Path) -> None:
    """With nothing stored locally, the data directory holds the admin token alone."""
    from cryptography.fernet import Fernet

    nats_url = require_nats()
    schema, store_url = create_schema("datadir_")
    stream = unique("turnout")
    data = tmp_path / "not" / "yet" / "data"
    config = config_file(
        tmp_path,
        data,
        f'secret_key = "{Fernet.generate_key().decode()}"\n'
        f'[log]\nbackend = "nats"\nurl = "{nats_url}"\nstream = "{stream}"\npartitions = 2\n'
        f'[store]\nurl = "{store_url}"\n',
    )
    try:
        with permissive_umask(), TurnoutProcess(config) as turnout:
            assert mode(data) == "0o700"
            assert modes(data) == {"admin.token": "0o600"}
            token = (data / "admin.token").read_text()
            assert f"{data / 'admin.token'}): {token}" in turnout.output.read_text()
    finally:
        delete_stream(stream)
        drop_schema(schema)
