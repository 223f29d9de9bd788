"""Log retention removes only what every connection has finished with."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from support import API_KEY, SITE_ID
from turnout import config as config_module
from turnout.app import Turnout
from turnout.emulators.customerio import CustomerIOEmulator
from turnout.spec.normalise import RequestFacts, now


async def test_trim_waits_for_the_slowest_connection(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
[log]
retention_hours = 0
[[sources]]
name = "web"
write_key = "wk"
[[connections]]
name = "fast"
destination = "customerio"
[connections.settings]
site_id = "{SITE_ID}"
api_key = "{API_KEY}"
track_url = "{emulator.url}"
[[connections]]
name = "paused"
destination = "customerio"
enabled = false
[connections.settings]
site_id = "{SITE_ID}"
api_key = "{API_KEY}"
track_url = "{emulator.url}"
"""
    )
    service = Turnout(config_module.load(path))
    await service.start()
    try:
        for i in range(5):
            body = f'{{"userId": "r{i}", "event": "kept"}}'.encode()
            facts = RequestFacts(received_at=now(), ip=None)
            await service.ingestor.accept_one(body, "track", "wk", facts)
        deadline = time.monotonic() + 15
        while await service.log.position("connection:fast") < 5:
            assert time.monotonic() < deadline, "the fast connection did not deliver"
            await asyncio.sleep(0.05)
        assert await service.delivery.trim() == 0  # "paused" has not read anything yet
        assert len(await service.log.read(0, 10)) == 5

        await service.store.delete_connection("paused")
        await service.delivery.remove("paused")
        assert await service.delivery.trim() == 5
        assert await service.log.read(0, 10) == []
    finally:
        await service.stop()


RETENTION_HOURS = 0.0015  # 5.4 seconds: long enough that a message just delivered is "recent"


async def test_messages_older_than_retention_go_and_recent_ones_stay(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    """Age decides: of messages every connection has delivered, those received more than
    `retention_hours` ago leave the log and their delivery records go; newer ones stay."""
    path = tmp_path / "turnout.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"
[log]
retention_hours = {RETENTION_HOURS}
[[sources]]
name = "web"
write_key = "wk"
[[connections]]
name = "cio"
destination = "customerio"
[connections.settings]
site_id = "{SITE_ID}"
api_key = "{API_KEY}"
track_url = "{emulator.url}"
"""
    )
    retention = RETENTION_HOURS * 3600
    service = Turnout(config_module.load(path))
    await service.start()

    async def send(label: str, count: int) -> list[str]:
        ids = [f"{label}-{i}" for i in range(count)]
        for message_id in ids:  # one request each: each is its own chunk in the log
            body = f'{{"userId": "{message_id}", "event": "{label}", "messageId": "{message_id}"}}'
            facts = RequestFacts(received_at=now(), ip=None)
            await service.ingestor.accept_one(body.encode(), "track", "wk", facts)
        return ids

    async def delivered(ids: list[str]) -> None:
        deadline = time.monotonic() + 15
        for message_id in ids:
            while [r.fate for r in await service.store.trace(message_id)] != ["delivered"]:
                assert time.monotonic() < deadline, f"{message_id} was not delivered"
                await asyncio.sleep(0.05)

    try:
        old = await send("old", 3)
        await delivered(old)
        old_done = time.time()
        # Wait (a condition, not a nap) until everything about the old messages is past
        # retention, then receive the recent ones.
        while time.time() <= old_done + retention:
            await asyncio.sleep(0.05)
        recent = await send("recent", 2)
        await delivered(recent)

        assert await service.delivery.trim() == 3
        kept = await service.log.read(0, 10)
        assert [(e.offset, json.loads(e.payload)["messageId"]) for e in kept] == [
            (4, "recent-0"),
            (5, "recent-1"),
        ]
        for message_id in old:
            assert await service.store.trace(message_id) == []
        for message_id in recent:
            assert [r.fate for r in await service.store.trace(message_id)] == ["delivered"]
        assert await service.delivery.trim() == 0  # the recent ones are still within retention
    finally:
        await service.stop()
