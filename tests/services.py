"""The real NATS JetStream and PostgreSQL the scale-out tests run against.

Tests skip with a clear message when a service is not reachable on this machine, except where
`TURNOUT_REQUIRE_SERVICES=1` (CI sets it): then an unreachable service fails the test, so a
broken CI setup can never pass by skipping.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

NATS_URL = os.environ.get("TURNOUT_TEST_NATS_URL", "nats://127.0.0.1:4222")
POSTGRES_URL = os.environ.get(
    "TURNOUT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _reachable(url: str, default_port: int) -> bool:
    rest = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = rest.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or default_port)), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> None:
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (TURNOUT_REQUIRE_SERVICES=1)")
    pytest.skip(message + "; start it or set TURNOUT_TEST_NATS_URL / TURNOUT_TEST_POSTGRES_URL")


def require_nats() -> str:
    require("NATS JetStream", NATS_URL, 4222)
    return NATS_URL


def require_postgres() -> str:
    require("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


def unique(prefix: str) -> str:
    """A name no other test run uses (tests share one NATS server and one database)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"
