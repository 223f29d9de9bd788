"""`turnout check-connection NAME --config ...` against the emulator, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import API_KEY, SITE_ID, free_port, write_config
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator


@pytest.fixture
def us_workspace() -> Iterator[CustomerIOEmulator]:
    config = EmulatorConfig(site_id=SITE_ID, api_key=API_KEY, region="us")
    with run_emulator(config, port=0) as emu:
        yield emu


def check_connection(
    config: Path, name: str = "cio", api_key: str = API_KEY
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", "check-connection", name, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CIO_API_KEY": api_key, "NO_COLOR": "1"},
    )


def test_working_credentials_are_ok(tmp_path: Path, us_workspace: CustomerIOEmulator) -> None:
    result = check_connection(write_config(tmp_path, str(us_workspace.url)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: credentials accepted (region us)" in result.stdout
    assert "warning" not in result.stdout
    assert [r.endpoint for r in us_workspace.requests] == ["GET /api/v1/accounts/region"]


def test_a_wrong_key_fails_with_exit_code_1_and_says_so(
    tmp_path: Path, us_workspace: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, str(us_workspace.url))
    result = check_connection(config, api_key="not-the-key-7f3a")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed: Customer.io rejected the Site ID / API key (401)" in result.stdout
    assert "Track API keys" in result.stdout  # where to find the right ones
    assert "not-the-key-7f3a" not in result.stdout + result.stderr  # the key itself is never shown


def test_a_region_other_than_the_workspace_s_is_a_warning(
    tmp_path: Path, us_workspace: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, str(us_workspace.url))
    config.write_text(config.read_text().replace('region = "us"', 'region = "eu"'))
    result = check_connection(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: credentials accepted (region us)" in result.stdout
    assert 'warning: the workspace is in region "us" but the connection is set to "eu"' in (
        result.stdout
    )
    assert 'set region = "us"' in result.stdout


def test_an_unknown_connection_is_named(tmp_path: Path, us_workspace: CustomerIOEmulator) -> None:
    result = check_connection(write_config(tmp_path, str(us_workspace.url)), name="nope")
    assert result.returncode == 2
    assert "no connection named 'nope'" in result.stdout + result.stderr
    assert len(us_workspace.requests) == 0


def test_an_unreachable_destination_fails(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = check_connection(write_config(tmp_path, nowhere))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed: could not reach {nowhere}" in result.stdout
