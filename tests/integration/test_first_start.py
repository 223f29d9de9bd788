"""`turnout serve` with no arguments: embedded storage, and what a new user needs printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from support import basic, free_port, wait_until


def test_serve_without_arguments_creates_storage_and_prints_a_write_key(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TURNOUT_LISTEN": f"127.0.0.1:{port}"}
    output = tmp_path / "out.txt"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "turnout", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        printed = wait_until(
            lambda: "write key" in (text := output.read_text()) and text, what="the banner"
        )
        assert f"http://127.0.0.1:{port}/dashboard/" in printed
        key = re.search(r"write key of source 'default' \(generated\): (\S+)", printed)
        assert key, printed
        assert (tmp_path / "turnout-data" / "log.db").exists()
        admin = re.search(r"admin token \(generated, kept in \S+\): (\S+)", printed)
        assert admin, printed
        assert len(admin.group(1)) >= 32  # as long as Turnout requires of a configured token
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/track",
            json={"userId": "u", "event": "first"},
            headers=basic(key.group(1)),
        )
        assert response.status_code == 200, response.text
    finally:
        process.terminate()
        process.wait(timeout=30)

    # A second start reuses the stored source: no new key is generated or printed.
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "turnout", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        printed = wait_until(lambda: "listening" in (t := output.read_text()) and t, what="start")
        assert "write key" not in printed
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_configuration_error_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "turnout.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:1"\nlisten_typo = 3\n')
    result = subprocess.run(
        [sys.executable, "-m", "turnout", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "listen_typo" in result.stderr
