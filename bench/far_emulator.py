"""The Customer.io emulator as a distant Customer.io: every Track request answered `round trip`
milliseconds after it was sent.

The delay is spent before the emulator sees the request (the way out), so its record shows the
arrival at the far end, as Customer.io would count it. The control endpoints answer at once.

    .venv/bin/python bench/far_emulator.py --port 9901 --round-trip-ms 200 --site-id S --api-key K
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig
from turnout.emulators.customerio.server import serve


def far(app: Any, seconds: float) -> Any:
    """`app`, answering each Track request `seconds` later."""

    async def delayed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_emulator"):
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return delayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--round-trip-ms", type=float, required=True)
    parser.add_argument("--site-id", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()
    emulator = CustomerIOEmulator(
        EmulatorConfig(site_id=args.site_id, api_key=args.api_key, record_bodies=False)
    )
    serve(far(emulator.app, args.round_trip_ms / 1000), "127.0.0.1", args.port, log_level="warning")


if __name__ == "__main__":
    main()
