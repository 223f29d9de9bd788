"""A connection whose saved settings do not fit its destination: `misconfigured`, with the
field at fault, in the API and on the dashboard; no lane runs, nothing is lost, and fixing the
settings delivers what arrived meanwhile.

The configuration file is where such settings come from: its connections are saved as written
at every start (the API and the dashboard refuse them outright), so a typo there must be shown
plainly rather than stop the server or drop calls.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import (
    ADMIN_TOKEN,
    API_KEY,
    SITE_ID,
    TurnoutProcess,
    started_url,
    wait_until,
    write_config,
)
from turnout.emulators.customerio import CustomerIOEmulator

REASON = "region: must be \"us\" or \"eu\", got 'mars'"


@pytest.fixture
def misconfigured(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    config = write_config(tmp_path, started_url(emulator))
    config.write_text(config.read_text().replace('region = "us"', 'region = "mars"'))
    with TurnoutProcess(config) as process:
        yield process


def _status(turnout: TurnoutProcess) -> dict[str, Any]:
    response = turnout.api("GET", "/connections/cio")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()["status"]
    return status


def _signed_in(turnout: TurnoutProcess) -> httpx.Client:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    signed = client.post(
        "/dashboard/login",
        data={"token": ADMIN_TOKEN, "csrf_token": found.group(1), "next": "/dashboard/"},
    )
    assert signed.status_code == 303, signed.text
    return client


def _alert(page: str) -> str:
    """The overview's alert as a person reads it: tags dropped, entities decoded."""
    found = re.search(r'<div class="alert[^"]*" role="alert">(.*?)</div>', page, re.S)
    assert found, page[:1000]
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_settings_that_do_not_fit_show_misconfigured_with_the_field_at_fault(
    misconfigured: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    assert misconfigured.post("/v1/track", {"userId": "u1", "event": "signed up"}).json() == {
        "success": True
    }
    assert _status(misconfigured) == {
        "state": "misconfigured",
        "detail": REASON,
        "position": None,
        "held": 0,
        "blocked_people": 0,
        "in_flight": 0,
    }
    client = _signed_in(misconfigured)
    try:
        panel = client.get("/dashboard/connections/cio/overview")
        assert panel.status_code == 200
        assert _alert(panel.text) == (
            f"Not running: the saved settings do not fit Customer.io ({REASON})."
            " Edit the connection to fix them."
        )
        page = client.get("/dashboard/connections/cio")
        assert '<span class="badge bad">Settings invalid</span>' in page.text
    finally:
        client.close()
    assert emulator.requests.total == 0  # no lane ran: nothing was sent anywhere


def test_fixing_the_settings_delivers_what_arrived_while_misconfigured(
    misconfigured: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    for n in range(3):
        assert misconfigured.post("/v1/track", {"userId": "u1", "event": f"e{n}"}).is_success
    assert _status(misconfigured)["state"] == "misconfigured"
    fixed = misconfigured.api(
        "PATCH",
        "/connections/cio",
        json={
            "settings": {
                "site_id": SITE_ID,
                "api_key": API_KEY,  # the stored settings did not validate: the key is asked again
                "region": "us",
                "track_url": started_url(emulator),
            }
        },
    )
    assert fixed.status_code == 200, fixed.text
    person = wait_until(
        lambda: (p := emulator.state.person("u1")) and len(p.activity) == 3 and p,
        what="the three calls kept while misconfigured",
    )
    assert [a.name for a in person.activity] == ["e0", "e1", "e2"]
    status = wait_until(
        lambda: (s := _status(misconfigured))["state"] == "ok" and s["position"] == 3 and s,
        what="the lane running with its position past the three calls",
    )
    assert status["detail"] == ""
