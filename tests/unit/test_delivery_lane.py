"""A lane on the real embedded log and store, sending to the Customer.io emulator over HTTP: a
replayed dead letter is held as a replay, not as a place in the log, so it never holds the
position back, and its fate is recorded at the offset it was dead-lettered from; and how a
refused connection is probed until it works again."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from support import API_KEY, SITE_ID, started_url, until
from turnout.config import DeliveryConfig
from turnout.delivery.gate import RateGate
from turnout.delivery.lane import Lane
from turnout.delivery.probe import PROBE_FIRST, PROBE_MAX, CredentialsProbe
from turnout.destinations import registry
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator
from turnout.log.base import NewEntry
from turnout.log.sqlite import SQLiteLog
from turnout.spec.message import Message, encode
from turnout.store.models import Connection, Fate
from turnout.store.sqlite import Store
from turnout.tap import Tap


@pytest.fixture
def emulator() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY)) as emu:
        yield emu


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SQLiteLog]:
    made = SQLiteLog(tmp_path / "log.db", synchronous="OFF")
    await made.start()
    yield made
    await made.close()


@pytest.fixture
async def lane(
    emulator: CustomerIOEmulator, log: SQLiteLog, store: Store
) -> AsyncIterator[Lane]:
    # v1: one request per operation, each on the person's own path, so a fault can hit one
    # person's calls and leave the others'.
    settings = {
        "site_id": SITE_ID,
        "api_key": API_KEY,
        "track_url": started_url(emulator),
        "api": "v1",
    }
    connection = Connection(name="cio", destination="customerio", settings=settings, sources=[])
    destination = registry.get("customerio")
    parsed = registry.parse_settings("customerio", settings)
    made = Lane(
        connection,
        destination,
        parsed,
        destination.client(parsed, RateGate(1000.0, "cio")),
        log,
        store,
        DeliveryConfig(linger_ms=1, max_backoff_s=0.5),
        Tap(),
    )
    made.start()
    yield made
    await made.stop()


def call(index: int, user: str) -> NewEntry:
    message = Message(
        type="track",
        message_id=f"m-{index}",
        received_at="2026-01-05T10:00:00.000Z",
        timestamp="2026-01-05T10:00:00.000Z",
        user_id=user,
        event=f"E{index}",
        source="web",
    )
    return NewEntry("web", message.person_key, encode(message))


async def test_a_replayed_dead_letter_never_holds_the_position_and_is_recorded_where_it_was(
    lane: Lane, log: SQLiteLog, store: Store, emulator: CustomerIOEmulator
) -> None:
    ada = "/api/v1/customers/ada/"
    emulator.faults.fail_next(1, status=400, path_prefix=ada)
    await log.append([call(1, "ada")])

    async def the_letter() -> Any:
        letters = await store.dead_letters("cio")
        return letters if len(letters) == 1 else None

    [letter] = await until(the_letter, what="ada's call dead-lettered")
    assert (letter.offset, letter.message_id) == (1, "m-1")

    emulator.faults.fail_for(3600, status=503, path_prefix=ada)  # ada's calls fail a while
    assert lane.replay([letter]) == 1
    await log.append([call(2, "bob")])

    async def bob_delivered_past_the_replay() -> bool:
        status = lane.status()
        fates = [r.fate for r in await store.trace("m-1")]
        return (status.position, status.held, fates) == (2, 1, [Fate.RETRYING])

    await until(bob_delivered_past_the_replay, what="the position past bob's call, the replay held")

    emulator.faults.clear()

    async def replay_delivered() -> Any:
        records = await store.trace("m-1")
        return records if records and records[0].fate is Fate.DELIVERED else None

    [record] = await until(replay_delivered, what="the replay delivered")
    assert (record.offset, record.person) == (1, "ada")
    # The letter is marked replayed in the same flush, just after the fate is written.
    async def letter_marked() -> bool:
        return await store.dead_letters("cio") == []

    await until(letter_marked, what="the letter marked replayed")
    assert len(await store.dead_letters("cio", include_replayed=True)) == 1
    person = emulator.state.person("ada")
    assert person is not None and [a.name for a in person.activity] == ["E1"]


def test_a_refused_connection_is_probed_one_request_at_a_time_ever_less_often(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "turnout.delivery")
    probe = CredentialsProbe("cio")
    assert probe.send_limit(8) == 8
    waits = []
    for _ in range(7):
        probe.refused("credentials rejected (401)", was_running=True)
        now = time.monotonic()
        assert not probe.due(now)
        waits.append(round(probe.seconds_left(now)))
        assert probe.due(now + probe.seconds_left(now))
        assert probe.send_limit(8) == 1  # the probe goes alone
    assert waits == [PROBE_FIRST, 30, 60, 120, 240, PROBE_MAX, PROBE_MAX]
    probe.accepted()
    assert probe.send_limit(8) == 8
    probe.refused("credentials rejected (401)", was_running=True)
    assert round(probe.seconds_left(time.monotonic())) == PROBE_FIRST  # the wait starts over
    assert [r.getMessage() for r in caplog.records] == [
        "connection cio: credentials rejected (401); delivery on hold",  # news once, not per probe
        "connection cio: credentials accepted again; delivery resumed",
        "connection cio: credentials rejected (401); delivery on hold",
    ]
