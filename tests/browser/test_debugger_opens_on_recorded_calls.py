"""The debugger as a new user meets it, in Chromium: calls sent before the page was opened (and
before a restart) are there at once, with their fates; a person is looked up from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support import ADMIN_TOKEN, TurnoutProcess, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.browser

CALLS: list[dict[str, Any]] = [
    {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com"}},
    {"type": "track", "userId": "ada", "event": "Signed Up"},
    {"type": "page", "userId": "ada", "properties": {"url": "https://x.test/pricing"}},
    {"type": "track", "userId": "ada", "event": "Opted Out", "integrations": {"All": False}},
]


@pytest.fixture
def restarted(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    """A Turnout that received and delivered CALLS, then restarted."""
    process = TurnoutProcess(write_config(tmp_path, started_url(emulator))).start()
    try:
        for index, call in enumerate(CALLS):
            assert process.post("/v1/batch", {"batch": [{**call, "messageId": f"b-{index}"}]})
        wait_until(
            lambda: all(
                (answer := process.api("GET", f"/messages/b-{i}")).status_code == 200
                and answer.json()["deliveries"]
                for i in range(len(CALLS))
            ),
            what="every call's fate",
        )
    finally:
        process.stop()
    with process:
        yield process


def test_the_debugger_opens_on_the_recorded_calls_and_finds_a_person(
    page: Any, restarted: TurnoutProcess, tmp_path: Path
) -> None:
    page.goto(restarted.url + "/dashboard/debugger")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button:has-text('Sign in')")
    expect(page.locator("#live")).to_have_text("Live")
    rows = page.locator("details.msg")
    expect(rows).to_have_count(4)
    expect(rows.locator("summary .name")).to_have_text(
        ["Opted Out", "https://x.test/pricing", "Signed Up", "identify · ada@example.com"]
    )
    expect(rows.locator("summary .fates")).to_have_text(
        [
            'cio: filtered · integrations: all destinations disabled ("All": false) and'
            " Customer.io not enabled",
            "cio: delivered",
            "cio: delivered",
            "cio: delivered",
        ]
    )
    expect(page.locator(".feed-mark")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "debugger.png"), full_page=True)

    # The newest call, downloaded as a fixture: the call as stored, as `trace --fixtures` writes it.
    rows.first.locator("summary").click()
    with page.expect_download() as downloading:
        rows.first.get_by_text("Download as fixture").click()
    download = downloading.value
    saved = tmp_path / "downloaded.json"
    download.save_as(saved)
    stored = restarted.api("GET", "/people", params={"user_id": "ada"}).json()["calls"][-1]
    assert download.suggested_filename == "b-3.json"
    assert saved.read_text() == json.dumps(stored["message"], indent=2, sort_keys=True) + "\n"

    page.fill("#p-id", "ada")
    page.click("button:has-text('Look up')")
    expect(page.locator("h1")).to_have_text("Person ada userId")
    expect(page.locator("#person-calls tbody tr")).to_have_count(4)
    expect(page.locator("#person-calls .call-name")).to_have_text(
        ["identify · ada@example.com", "Signed Up", "https://x.test/pricing", "Opted Out"]
    )
    page.screenshot(path=str(tmp_path / "person.png"), full_page=True)
