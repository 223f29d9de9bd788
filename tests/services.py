"""What the tests need from the machine: the real NATS JetStream and PostgreSQL the scale-out
tests run against, and the one way any test says it cannot run here.

A test that cannot run (a service not reachable, a tool or package not installed) calls
`skip_or_fail`: it skips with the reason on a developer's machine, and fails where
`TURNOUT_REQUIRE_SERVICES=1` (CI sets it), so a broken CI setup can never pass by skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
import uuid
from types import ModuleType
from typing import NoReturn

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


def services_required() -> bool:
    """True in a run that must not skip anything (CI): `TURNOUT_REQUIRE_SERVICES` set to anything
    but empty or "0". Read here only, so every part of the suite agrees on what it means."""
    return os.environ.get("TURNOUT_REQUIRE_SERVICES", "") not in ("", "0")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test (or the whole module, at import) saying why; fail instead where
    `services_required()`, so CI cannot go green by running less."""
    if services_required():
        pytest.fail(f"{reason} (TURNOUT_REQUIRE_SERVICES is set: nothing may skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_skip(module: str) -> ModuleType:
    """`pytest.importorskip` that fails in CI: a test extra missing there is a broken setup."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        skip_or_fail(f"{module} is not installed ({exc}): pip install -e '.[dev]'")


def require(name: str, url: str, default_port: int) -> None:
    if not _reachable(url, default_port):
        skip_or_fail(
            f"{name} is not reachable at {url}; start it or set "
            "TURNOUT_TEST_NATS_URL / TURNOUT_TEST_POSTGRES_URL"
        )


def require_nats() -> str:
    require("NATS JetStream", NATS_URL, 4222)
    return NATS_URL


def require_postgres() -> str:
    require("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


def unique(prefix: str) -> str:
    """A name no other test run uses (tests share one NATS server and one database)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def create_schema(prefix: str) -> tuple[str, str]:
    """A PostgreSQL schema of the test's own: (its name, a store URL whose connections use it).
    Drop it with `drop_schema`."""
    import psycopg

    base = require_postgres()
    schema = unique(prefix)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def delete_stream(stream: str) -> None:
    """Remove a test's JetStream stream and the key-value buckets the NATS log keeps beside it."""
    asyncio.run(_delete_stream(stream))


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    for bucket in ("positions", "members", "leases", "replays"):
        with contextlib.suppress(Exception):
            await js.delete_key_value(f"{stream}-{bucket}")
    with contextlib.suppress(Exception):
        await js.delete_stream(stream)
    await nc.close()
