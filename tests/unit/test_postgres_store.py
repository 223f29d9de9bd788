"""The PostgreSQL store answers exactly as the SQLite store does, for the same calls."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from services import require_postgres, unique
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter, DeliveryRecord, Fate, Reject, Source
from turnout.store.postgres import PostgresStore
from turnout.store.secrets import SecretBox
from turnout.store.sqlite import Store

pytestmark = pytest.mark.services


def secret_fields(_: str) -> frozenset[str]:
    return frozenset({"api_key"})


async def schema_url(base: str) -> tuple[str, str]:
    """A schema of its own per test, so runs sharing the database never see each other."""
    schema = unique("t_")
    async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    box = SecretBox(_key())
    if request.param == "sqlite":
        made: StateStore = Store(tmp_path / "store.db", box, secret_fields)
        await made.start()
        yield made
        await made.close()
        return
    base = require_postgres()
    url, schema = await schema_url(base)
    made = PostgresStore(url, box, secret_fields)
    await made.start()
    try:
        yield made
    finally:
        await made.close()
        async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


async def test_sources_and_connections_round_trip_with_secrets(store: StateStore) -> None:
    await store.put_source(Source(name="web", write_key="wk_1"))
    await store.put_source(Source(name="app", write_key="wk_2"))
    assert set(store.sources_by_key) == {"wk_1", "wk_2"}
    await store.put_connection(
        Connection(
            name="cio",
            destination="customerio",
            settings={"site_id": "s", "api_key": "secret"},
            sources=["web"],
            rate_limit=50.0,
        )
    )
    await store.rename_source("web", "site")
    got = await store.get_connection("cio")
    assert got is not None
    assert got.settings == {"site_id": "s", "api_key": "secret"}
    assert got.sources == ["site"] and got.rate_limit == 50.0 and got.enabled
    await store.delete_source("app")
    assert [s.name for s in await store.list_sources()] == ["site"]
    await store.delete_connection("cio")
    assert await store.list_connections() == []


async def test_records_fates_offsets_and_counts(store: StateStore) -> None:
    def rec(offset: int, fate: Fate) -> DeliveryRecord:
        return DeliveryRecord("cio", offset, f"m{offset}", "p", fate, detail="d")

    await store.record([rec(1, Fate.DELIVERED), rec(2, Fate.RETRYING), rec(3, Fate.FILTERED)])
    await store.record([rec(2, Fate.DEAD)])
    assert await store.delivered_offsets("cio", 0, 10) == {1, 2, 3}
    assert await store.delivered_offsets("cio", 1, 2) == {2}
    assert [r.fate for r in await store.trace("m2")] == [Fate.DEAD]
    many = [f"unknown-{i}" for i in range(600)] + ["m3", "m1", "m3"]  # two queries' worth
    fates = [(r.message_id, r.fate) for r in await store.fates(many)]
    assert fates == [("m1", Fate.DELIVERED), ("m3", Fate.FILTERED)]
    totals = await store.fate_totals("cio")
    assert totals == {"delivered": 1, "retrying": 1, "filtered": 1, "dead_lettered": 1}
    now = {"delivered": 1, "dead_lettered": 1, "filtered": 1}
    assert await store.current_fates("cio", 0) == now
    assert sum(n for _, _, n in await store.fate_series("cio", 0)) == 4
    assert [d[0] for d in await store.failure_details("cio", 0)] == ["dead_lettered"]


async def test_dead_letters_replay_rejects_and_trim(store: StateStore) -> None:
    letter = DeadLetter(0, "cio", 7, "m7", "p", "bad email", "req", "resp", b"{}", time.time())
    await store.add_dead_letters([letter, dataclasses.replace(letter, message_id="m8")])
    letters = await store.dead_letters("cio", reason="email")
    assert [d.message_id for d in letters] == ["m7", "m8"]
    assert letters[0].payload == b"{}"
    await store.mark_replayed([letters[0].id])
    assert [d.message_id for d in await store.dead_letters("cio")] == ["m8"]
    assert await store.replayed_count("cio", 0) == 1
    again = await store.get_dead_letter(letters[0].id)
    assert again is not None and again.replayed_at is not None
    await store.add_rejects([Reject(0, "web", "invalid", "no userId", "{}", time.time())])
    assert [r.code for r in await store.rejects()] == ["invalid"]
    await store.record([DeliveryRecord("cio", 1, "m1", "p", Fate.DELIVERED)])
    await store.trim(time.time() + 120)
    assert await store.trace("m1") == [] and await store.rejects() == []
    await store.forget_connection("cio")
    assert await store.dead_letters("cio", include_replayed=True) == []
