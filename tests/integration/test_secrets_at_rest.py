"""Customer.io credentials never leave the store unmasked, wherever one looks.

A running Turnout gets a Customer.io API key two ways (the configuration file's `env:NAME`, and
the management API as the dashboard sends it), delivers with both, dead-letters a message, and
is watched through the debugger stream, `/metrics`, the dead letters and the traces. Then every
byte it wrote is searched for each key and for the Basic credentials built from it
(base64 of `site_id:api_key`, in both base64 alphabets): the files of the data directory (the
store, the log, their write-ahead logs), the rows of a PostgreSQL store, and the server's log,
written at debug level. The server's log must not hold the source's write key or the admin token
either.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from services import create_schema, delete_stream, drop_schema, require_nats, unique
from support import (
    ADMIN_TOKEN,
    SITE_ID,
    WRITE_KEY,
    TurnoutProcess,
    basic,
    started_url,
    wait_until,
    write_config,
)
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

# Keys whose Basic credentials differ between the two base64 alphabets ('/' and '+'). The
# file's connection has `write_config`'s site and `api_key = "env:CIO_API_KEY"`.
FILE_SITE, FILE_KEY = SITE_ID, "file-key-Zx9~Qw3?Lp7>Vb2"
DASH_SITE, DASH_KEY = "site-dash", "dash-key-Mn4?Tr8~Hy1>Kc6"
WRONG_WRITE_KEY = "wk_mistyped-4f2a9c71"


def _secrets() -> dict[str, bytes]:
    """What must never be found: each key, and the Authorization value made from it."""
    found: dict[str, bytes] = {}
    for name, site, key in (("file", FILE_SITE, FILE_KEY), ("dashboard", DASH_SITE, DASH_KEY)):
        pair = f"{site}:{key}".encode()
        found[f"the {name} connection's API key"] = key.encode()
        found[f"the {name} connection's Basic credentials"] = base64.b64encode(pair).rstrip(b"=")
        found[f"the {name} connection's Basic credentials (URL-safe base64)"] = (
            base64.urlsafe_b64encode(pair).rstrip(b"=")
        )
    return found


SECRETS = _secrets()


@dataclass
class Seen:
    """Everything Turnout showed or wrote, by where it was found."""

    places: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, data: bytes | str) -> None:
        self.places[where] = data.encode() if isinstance(data, str) else data

    def leaks(self, secrets: dict[str, bytes]) -> list[str]:
        return [
            f"{name} in {where}"
            for where, data in self.places.items()
            for name, needle in secrets.items()
            if needle in data
        ]


@dataclass
class Deployment:
    turnout: TurnoutProcess
    data_dir: Path
    file_side: CustomerIOEmulator  # Customer.io of the connection from the file
    dash_side: CustomerIOEmulator  # Customer.io of the connection made through the API
    store_rows: Callable[[], dict[str, bytes]] | None = None  # a PostgreSQL store's tables


def _deployment(
    tmp_path: Path,
    env: dict[str, str],
    store_rows: Callable[[], dict[str, bytes]] | None = None,
) -> Iterator[Deployment]:
    with (
        run_emulator(EmulatorConfig(site_id=FILE_SITE, api_key=FILE_KEY), port=0) as file_side,
        run_emulator(EmulatorConfig(site_id=DASH_SITE, api_key=DASH_KEY), port=0) as dash_side,
    ):
        config = write_config(tmp_path, started_url(file_side))
        process = TurnoutProcess(
            config, env={"CIO_API_KEY": FILE_KEY, **env}, args=("--log-level", "debug")
        )
        with process:
            yield Deployment(process, tmp_path / "data", file_side, dash_side, store_rows)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment(tmp_path, {})


@pytest.fixture
def postgres_store(tmp_path: Path) -> Iterator[Deployment]:
    """The scale-out configuration: the log on NATS JetStream, the store in PostgreSQL."""
    nats_url = require_nats()
    stream = unique("secrets")
    schema, store_url = create_schema("secrets_")
    env = {
        "TURNOUT_SECRET_KEY": Fernet.generate_key().decode(),
        "TURNOUT_LOG_BACKEND": "nats",
        "TURNOUT_LOG_URL": nats_url,
        "TURNOUT_LOG_STREAM": stream,
        "TURNOUT_LOG_PARTITIONS": "2",
        "TURNOUT_STORE_URL": store_url,
    }
    try:
        yield from _deployment(tmp_path, env, lambda: _postgres_rows(store_url, schema))
    finally:
        delete_stream(stream)
        drop_schema(schema)


def _postgres_rows(url: str, schema: str) -> dict[str, bytes]:
    """Every value of every table of the store, as bytes (bytea as stored, the rest as text)."""
    import psycopg

    rows: dict[str, bytes] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        assert tables, f"no tables in schema {schema}"
        for (table,) in tables:
            values = bytearray()
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row:
                    binary = isinstance(value, bytes | memoryview)
                    values += (bytes(value) if binary else str(value).encode()) + b"\n"
            rows[f"PostgreSQL table {table}"] = bytes(values)
    return rows


# -- what a user does -------------------------------------------------------------------------


def _use(deployment: Deployment, seen: Seen) -> list[str]:
    """Connect Customer.io through the API, send calls every way an SDK does, dead-letter one;
    returns the ids of the messages sent."""
    turnout = deployment.turnout

    def api(method: str, path: str, **kw: Any) -> httpx.Response:
        response = turnout.api(method, path, **kw)
        seen.add(f"the answer to {method} /api/v1{path}", response.text)
        return response

    created = api(
        "POST",
        "/connections",
        json={
            "name": "cio-dash",
            "sources": ["web"],
            "settings": {
                "site_id": DASH_SITE,
                "api_key": DASH_KEY,
                "track_url": started_url(deployment.dash_side),
            },
        },
    )
    assert created.status_code == 201, created.text
    assert api("POST", "/connections/cio-dash/test").status_code == 200

    deployment.file_side.faults.fail_next(1, status=400)  # the next request is refused for good
    doomed = "secrets-doomed"
    sent = turnout.post("/v1/track", {"userId": "p-0", "event": "Doomed", "messageId": doomed})
    assert sent.status_code == 200, sent.text
    wait_until(
        lambda: api("GET", "/dead-letters", params={"connection": "cio"}).json(),
        what="the dead letter",
    )

    ids = [doomed]

    def send(path: str, body: dict[str, Any], **kw: Any) -> None:
        response = httpx.post(turnout.url + path, json=body, timeout=10, **kw)
        assert response.status_code == 200, response.text
        ids.extend(m["messageId"] for m in body.get("batch", [body]))

    send(
        "/v1/identify",
        {"userId": "p-1", "traits": {"plan": "pro"}, "messageId": "s-1"},
        headers=basic(WRITE_KEY),
    )
    send("/v1/track", {"userId": "p-1", "event": "Paid", "writeKey": WRITE_KEY, "messageId": "s-2"})
    send(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "page",
                    "userId": "p-2",
                    "name": "Home",
                    "writeKey": WRITE_KEY,
                    "messageId": "s-3",
                },
                {
                    "type": "track",
                    "anonymousId": "v-1",
                    "event": "Seen",
                    "writeKey": WRITE_KEY,
                    "messageId": "s-4",
                },
            ]
        },
    )
    refused = turnout.post("/v1/track", {"userId": "p-3", "event": "X"}, write_key=WRONG_WRITE_KEY)
    assert refused.status_code == 401
    assert httpx.get(f"{turnout.url}/v1/projects/{WRITE_KEY}/settings", timeout=10).is_success

    def resolved() -> bool:
        for message_id in ids:
            trace = api("GET", f"/messages/{message_id}")
            if trace.status_code != 200:
                return False
            fates = {d["connection"]: d["fate"] for d in trace.json()["deliveries"]}
            if set(fates) != {"cio", "cio-dash"} or "retrying" in fates.values():
                return False
        return True

    wait_until(resolved, timeout=30, what="every message resolved for both connections")
    for letter in api("GET", "/dead-letters", params={"connection": "cio"}).json():
        detail = api("GET", f"/dead-letters/{letter['id']}").json()
        assert detail["request"].startswith("POST "), detail  # the request is shown...
    api("GET", "/connections")
    api("GET", "/connections/cio")
    api("GET", "/connections/cio-dash")
    api("GET", "/connections/cio/overview")
    return ids


class DebuggerStream:
    """The dashboard's debugger stream, signed in and read in a thread while the test goes on
    (the stream shows what happens while it is open)."""

    def __init__(self, turnout: TurnoutProcess) -> None:
        self.client = httpx.Client(base_url=turnout.url, timeout=10)
        page = self.client.get("/dashboard/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        signed_in = self.client.post(
            "/dashboard/login",
            data={"token": ADMIN_TOKEN, "csrf_token": csrf.group(1), "next": "/dashboard/"},
        )
        assert signed_in.status_code == 303, signed_in.text
        self.text = bytearray()
        self.shown: set[tuple[str, str]] = set()  # (connection, message id) of delivery items
        self._open = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self._open.wait(10), "the debugger stream did not open"

    def _read(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        params = {"source": "web"}
        try:
            with self.client.stream(
                "GET", "/dashboard/debugger/stream", params=params, timeout=timeout
            ) as events:
                event = ""
                for line in events.iter_lines():
                    self._open.set()  # the first line comes once the stream listens
                    self.text += line.encode() + b"\n"
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "delivery":
                        item = json.loads(line.removeprefix("data: "))
                        self.shown.add((item["connection"], item["message_id"]))
        except httpx.HTTPError:
            pass  # the server went away mid-stream: what was read is kept

    def close(self) -> None:
        """After the server stopped: a stopping server ends every debugger stream."""
        self._reader.join(10)
        assert not self._reader.is_alive(), "the debugger stream outlived the server"
        self.client.close()


def _files(data_dir: Path, seen: Seen, when: str) -> list[str]:
    """Every file of the data directory, byte for byte; returns their names."""
    paths = sorted(p for p in data_dir.rglob("*") if p.is_file())
    for path in paths:
        seen.add(f"{path.relative_to(data_dir)} ({when})", path.read_bytes())
    return [path.name for path in paths]


def _check(deployment: Deployment) -> None:
    turnout = deployment.turnout
    seen = Seen()
    debugger = DebuggerStream(turnout)
    ids = _use(deployment, seen)
    wanted = {(connection, m) for m in ids for connection in ("cio", "cio-dash")}
    wait_until(lambda: debugger.shown >= wanted, what="the debugger showing every delivery")
    stream = bytes(debugger.text)
    assert b'"request": "POST ' in stream  # it shows what was sent
    seen.add("the debugger stream", stream)
    metrics = httpx.get(turnout.url + "/metrics", timeout=10)
    assert 'connection="cio-dash"' in metrics.text
    seen.add("/metrics", metrics.text)
    # The search finds what it looks for: these are the very values Customer.io received.
    for side in (deployment.file_side, deployment.dash_side):
        header = side.requests.last.headers["authorization"] if side.requests.last else ""
        assert header.removeprefix("Basic ").rstrip("=").encode() in SECRETS.values()
    files = _files(deployment.data_dir, seen, "while running")
    if deployment.store_rows is None:  # the embedded log and store are among them
        assert {"store.db", "log.db", "store.db-wal", "log.db-wal"} <= set(files), files
    else:
        for table, values in deployment.store_rows().items():
            seen.add(table, values)
    turnout.stop()
    debugger.close()
    _files(deployment.data_dir, seen, "after a stop")
    log = turnout.output.read_bytes()
    seen.add("the server's log", log)

    assert seen.leaks(SECRETS) == []
    credentials = {
        "the write key": WRITE_KEY.encode(),
        "a mistyped write key": WRONG_WRITE_KEY.encode(),
        "the admin token": ADMIN_TOKEN.encode(),
    }
    assert [name for name, value in credentials.items() if value in log] == []


def test_no_secret_in_any_file_answer_stream_or_log_with_sqlite(sqlite_store: Deployment) -> None:
    _check(sqlite_store)


@pytest.mark.services
def test_no_secret_in_any_row_answer_stream_or_log_with_postgres(
    postgres_store: Deployment,
) -> None:
    _check(postgres_store)
