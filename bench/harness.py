"""What every benchmark needs to run Turnout and the emulator as real processes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # Turnout refuses one under 32 characters


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str,
    timeout: float = 30,
    process: subprocess.Popen[bytes] | None = None,
    any_answer: bool = False,
) -> None:
    """Wait until `url` answers, not 5xx (or anything, with `any_answer`: a server that only
    takes POSTs); fail at once if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            status = httpx.get(url, timeout=1).status_code
            if any_answer or status < 500:  # 503 = still starting
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def poll(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> bool:
    """Wait until `check()` holds, at most `timeout` seconds. A benchmark must never hang: on
    timeout it says what it was waiting for and returns False, so the caller reports the part
    as timed out (with what it measured so far) instead of printing a figure."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            print(f"  TIMEOUT: no {what} after {timeout:g} s", flush=True)
            return False
        time.sleep(interval)
    return True
