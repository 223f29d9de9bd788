"""Running the real thing in tests: `turnout serve` as a process, and waiting on outcomes."""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from turnout.emulators.customerio import CustomerIOEmulator

SITE_ID = "site-123"
API_KEY = "key-456"
WRITE_KEY = "wk_test"
ADMIN_TOKEN = "adm_test-token-0123456789abcdefghijkl"  # Turnout refuses one under 32 characters


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def started_url(emulator: CustomerIOEmulator) -> str:
    """A running emulator's base URL (`url` is None only until the emulator is started)."""
    assert emulator.url is not None, "the emulator is not running"
    return emulator.url


def write_config(
    directory: Path,
    track_url: str,
    *,
    port: int | None = None,
    extra: str = "",
    settings: str = "",
    connection: str = "",
    server: str = "",
) -> Path:
    """The configuration shape users write (the README's), pointed at the emulator.

    `server` is added to `[server]`, `extra` to `[delivery]` (or after it, as new sections)."""
    port = port or free_port()
    path = directory / "turnout.toml"
    path.write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
data_dir = "{directory / "data"}"
admin_token = "{ADMIN_TOKEN}"
{server}

[log]
sync = "normal"

[delivery]
linger_ms = 5
{extra}

[[sources]]
name = "web"
write_key = "{WRITE_KEY}"

[[connections]]
name = "cio"
destination = "customerio"
sources = ["web"]
{connection}

[connections.settings]
site_id = "{SITE_ID}"
api_key = "env:CIO_API_KEY"
region = "us"
track_url = "{track_url}"
{settings}
"""
    )
    return path


class TurnoutProcess:
    """`turnout serve --config ...` in its own process, as a user runs it."""

    def __init__(
        self, config: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.config = config
        self.env = {**os.environ, "CIO_API_KEY": API_KEY, **(env or {})}
        self.args = args  # more `turnout serve` options, e.g. ("--log-level", "debug")
        text = config.read_text()
        listen = text.split('listen = "', 1)[1].split('"', 1)[0]
        self.url = f"http://{listen}"
        self.process: subprocess.Popen[bytes] | None = None
        self.output = config.parent / "turnout.out"

    def start(self, timeout: float = 20.0) -> TurnoutProcess:
        handle = self.output.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "turnout", "serve", "--config", str(self.config), *self.args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"turnout exited early:\n{self.output.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"turnout did not become healthy:\n{self.output.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def post(self, path: str, body: Any, write_key: str = WRITE_KEY, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=basic(write_key), timeout=10, **kw)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.request(method, self.url + "/api/v1" + path, headers=headers, timeout=10, **kw)

    def __enter__(self) -> TurnoutProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


async def until(
    check: Callable[[], Any | Awaitable[Any]], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """`wait_until` inside a test's event loop: `check` may be a coroutine function, and the
    loop goes on running while it waits."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")
