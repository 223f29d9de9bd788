"""The tracking app in-process, over a log and store kept in memory: fast enough to fuzz.

The real server, real log and emulator are exercised in tests/integration; here the question is
only what the tracking API answers and what it hands to the log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.testclient import TestClient

from turnout.ingest.accept import Ingestor, Limits
from turnout.ingest.routes import build_tracking_app
from turnout.log.base import LogFull, NewEntry
from turnout.spec.message import Message, decode
from turnout.store.models import Reject, Source
from turnout.tap import Tap

WRITE_KEY = "wk_unit"
OTHER_KEY = "wk_other"


@dataclass
class MemoryLog:
    """Just what ingest uses of an `EventLog`: `append`, which may be told to refuse."""

    entries: list[NewEntry] = field(default_factory=list)
    full: bool = False

    async def append(self, entries: list[NewEntry]) -> None:
        if self.full:
            raise LogFull("log backlog is over its bound of 10 messages")
        self.entries.extend(entries)

    @property
    def messages(self) -> list[Message]:
        return [decode(e.payload) for e in self.entries]


@dataclass
class Harness:
    client: TestClient
    log: MemoryLog
    rejects: list[Reject]

    def post(self, path: str, body: Any = None, key: str | None = WRITE_KEY, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = basic(key)
        if body is not None:
            kw["json"] = body
        return self.client.post("/v1" + path, headers=headers, **kw)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@contextmanager
def tracking(limits: Limits | None = None, public_url: str = "") -> Iterator[Harness]:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sources = {
        WRITE_KEY: Source(name="web", write_key=WRITE_KEY),
        OTHER_KEY: Source(name="mobile", write_key=OTHER_KEY),
    }
    log = MemoryLog()
    rejects: list[Reject] = []

    async def record(items: list[Reject]) -> None:
        rejects.extend(items)

    ingestor = Ingestor(log, lambda: sources, record, Tap(), limits or Limits())  # type: ignore[arg-type]
    app = build_tracking_app(ingestor, lambda: sources, public_url, ["*"])
    outer = Starlette(routes=[Mount("/v1", app)])
    with TestClient(outer, base_url="http://turnout.test") as client:
        yield Harness(client, log, rejects)
