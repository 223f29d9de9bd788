"""Log retention removes only what every connection has finished with."""

from __future__ import annotations

import asyncio
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
