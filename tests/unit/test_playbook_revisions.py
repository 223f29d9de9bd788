"""Playbook revisions in the store (SQLite and PostgreSQL alike), the configuration file's
playbook checked at start, and a store from before revisions gaining its new column."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

import psycopg
from test_postgres_store import _key, schema_url, secret_fields

from services import require_postgres
from turnout.config import ConfigError, load
from turnout.playbooks.revisions import save_revision
from turnout.store.base import StateStore
from turnout.store.models import DeliveryRecord, Fate
from turnout.store.postgres import PostgresStore
from turnout.store.secrets import SecretBox
from turnout.store.sqlite import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
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


DROP_A = [{"when": 'event = "A"', "drop": True}]
DROP_B = [{"when": 'event = "B"', "drop": True}]


async def test_revisions_are_numbered_with_their_diff_and_unchanged_saves_add_none(
    store: StateStore,
) -> None:
    assert await save_revision(store, "cio", [], [], "deliver", "file") is None
    first = await save_revision(store, "cio", DROP_A, [], "deliver", "file")
    assert first is not None and (first.number, first.origin) == (1, "file")
    assert await save_revision(store, "cio", DROP_A, [], "deliver", "file") is None
    second = await save_revision(store, "cio", DROP_B, ["marketing"], "drop", "api")
    assert second is not None and second.number == 2
    assert second.diff == (
        "--- revision 1\n+++ this revision\n@@ -1,3 +1,3 @@\n [[playbook]]\n"
        "-when = 'event = \"A\"'\n+when = 'event = \"B\"'\n drop = true\n"
        "consent: consent = [], consent_missing = 'deliver' ->"
        " consent = ['marketing'], consent_missing = 'drop'\n"
    )
    await save_revision(store, "other", DROP_B, [], "deliver", "api")
    assert [r.number for r in await store.playbook_revisions("cio")] == [2, 1]
    current = await store.playbook_revision("cio")
    assert current is not None
    assert (current.rules, current.consent, current.consent_missing) == (
        DROP_B, ["marketing"], "drop"
    )  # fmt: skip
    one = await store.playbook_revision("cio", 1)
    assert one is not None and (one.rules, one.diff.startswith("--- no playbook")) == (DROP_A, True)
    assert await store.current_playbook_revisions() == {"cio": 2, "other": 1}
    await store.forget_connection("cio")
    assert await store.playbook_revisions("cio") == []


async def test_a_delivery_record_keeps_the_revision_and_filters_are_counted_by_who(
    store: StateStore,
) -> None:
    def filtered(offset: int, reason: str, revision: int | None) -> DeliveryRecord:
        record = DeliveryRecord("cio", offset, f"m{offset}", "p", Fate.FILTERED, reason)
        record.playbook_revision = revision
        return record

    records = [
        filtered(1, "playbook rule 1: drop", 3),
        filtered(2, "consent: not granted: x", 3),
        filtered(3, "integrations.All is false", None),
        DeliveryRecord("cio", 4, "m4", "p", Fate.DELIVERED, playbook_revision=3),
    ]
    await store.record(records)
    assert [(r.offset, r.playbook_revision) for r in await store.fates(["m1", "m3"])] == [
        (1, 3),
        (3, None),
    ]
    assert await store.filtered_by("cio", 0) == {"playbook": 1, "consent": 1, "destination": 1}


async def test_a_store_from_before_revisions_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE deliveries (connection TEXT NOT NULL, offset INTEGER NOT NULL,"
            " message_id TEXT NOT NULL, person TEXT NOT NULL, fate TEXT NOT NULL,"
            " detail TEXT NOT NULL, attempts INTEGER NOT NULL, request TEXT NOT NULL,"
            " response TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (connection, offset))"
        )
        old.execute(
            "INSERT INTO deliveries VALUES ('cio', 1, 'm1', 'p', 'delivered', '', 1, '', '', 1.0)"
        )
    store = Store(path, SecretBox(_key()), secret_fields)
    await store.start()
    try:
        assert [(r.message_id, r.playbook_revision) for r in await store.trace("m1")] == [
            ("m1", None)
        ]
        await store.record(
            [DeliveryRecord("cio", 2, "m2", "p", Fate.DELIVERED, playbook_revision=4)]
        )
        assert [r.playbook_revision for r in await store.trace("m2")] == [4]
    finally:
        await store.close()


def test_an_invalid_playbook_in_the_file_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text(
        '[[sources]]\nname = "web"\nwrite_key = "wk_1"\n\n[[connections]]\nname = "cio"\n'
        'destination = "customerio"\n\n[[connections.playbook]]\ndrop = true\n\n'
        "[[connections.playbook]]\nwhen = 'type = \"track\" and'\ndrop = true\n"
    )
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(refused.value) == (
        "connections.cio: playbook rule 2, when (line 1, column 19): unexpected end of condition;"
        " expected one of: (, a field path, a number, a string, false, not, null, true"
    )


def test_a_function_is_found_from_the_configuration_files_directory(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "keep.py").write_text("def keep(message):\n    return message\n")
    path = tmp_path / "turnout.toml"
    path.write_text(
        '[[connections]]\nname = "cio"\ndestination = "customerio"\n\n'
        '[[connections.playbook]]\nfunction = "functions/keep.py:keep"\n'
    )
    assert load(path).directory == tmp_path.resolve()
    path.write_text(path.read_text().replace("keep.py:keep", "gone.py:keep"))
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(refused.value) == (
        "connections.cio: playbook rule 1, function: no file"
        f" {tmp_path.resolve()}/functions/gone.py"
    )
