"""The calls every Python tracking SDK test sends: one person's identify, page, track, screen
and group. Shared by the in-process tests and by Customer.io's SDK, which runs in a process of
its own (see python-cdp/send_cdp.py)."""

from __future__ import annotations

from typing import Any


def send_everything(client: Any, user: str, *, rudder: bool = False) -> None:
    traits = {"email": f"{user}@example.com", "plan": "pro"}
    client.identify(user, traits, anonymous_id=f"anon-{user}")
    if rudder:
        # rudder-sdk-python's page takes keywords where segment's fork takes positions.
        client.page(user, category="Docs", name="Install", properties={"url": "https://x.io/i"})
    else:
        client.page(user, "Docs", "Install", {"url": "https://x.io/i"})
    client.track(user, "Order Completed", {"revenue": 42.5, "items": [{"sku": "a"}]})
    client.screen(user, "App", "Settings")
    client.group(user, "acme", {"name": "Acme Inc"})
    client.flush()
    client.join()
