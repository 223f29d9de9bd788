"""``turnout emulate customerio`` runs the emulator in the foreground as its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from turnout.emulators.cli import emulate_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_serves_the_track_api_with_given_settings() -> None:
    port = _free_port()
    command = [
        sys.executable, "-c", "from turnout.emulators.cli import emulate_app; emulate_app()",
        "customerio", "--port", str(port), "--site-id", "S", "--api-key", "K",
        "--region", "eu", "--rate-limit", "100", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_emulator/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        region = httpx.get(f"{url}/api/v1/accounts/region", auth=("S", "K")).json()
        assert region["region"] == "eu"
        config = httpx.get(f"{url}/_emulator/config").json()
        assert config["rate_limit_enabled"] and config["rate_limit_requests"] == 100
        assert httpx.put(f"{url}/api/v1/customers/u1", json={}, auth=("S", "K")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_rejects_bad_settings() -> None:
    result = CliRunner().invoke(emulate_app, ["customerio", "--region", "mars"])
    assert result.exit_code != 0
