"""The dashboard's promise, in a real browser: connect Customer.io in a minute, see the fate of
every event, see a failure explained, fix it, and replay what was dead-lettered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from screens import shoot
from segment.analytics import Client

from support import ADMIN_TOKEN, API_KEY, SITE_ID, TurnoutProcess, free_port, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.browser

TOKEN = ADMIN_TOKEN
NEW_KEY = "key-rotated-789"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TurnoutProcess]:
    """A Turnout with nothing configured but the admin token: everything else is clicked."""
    config = tmp_path / "turnout.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{free_port()}"
data_dir = "{tmp_path / "data"}"
admin_token = "{TOKEN}"

[log]
sync = "normal"

[delivery]
linger_ms = 5
"""
    )
    with TurnoutProcess(config) as process:
        yield process


def reload_until(page: Any, selector: str, text: str, timeout: float = 15.0) -> None:
    """Fates reach the store a moment after the debugger shows them; reload until they do."""
    wait_until(
        lambda: (page.reload(), page.locator(selector).inner_text().strip() == text)[1],
        timeout=timeout,
        what=f"{selector} to read {text!r}",
    )


def sign_in(page: Any, url: str) -> None:
    page.goto(url + "/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    shoot(page, "01-sign-in")
    page.fill("#token", "wrong-token")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".flash.error")).to_contain_text("not the admin token")
    page.fill("#token", TOKEN)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")


def create_source(page: Any, url: str) -> str:
    page.goto(url + "/dashboard/sources")
    page.fill("#name", "website")
    page.click("button:has-text('Create source')")
    expect(page.locator("h1")).to_have_text("website")
    expect(page.locator(".snippet pre").first).to_contain_text("cdnURL")
    shoot(page, "03-source")
    return str(page.locator("#write-key").inner_text()).strip()


def add_connection(page: Any, url: str, emulator: CustomerIOEmulator) -> None:
    page.goto(url + "/dashboard/connections/new")
    page.click("a.destination:has-text('Customer.io')")  # the destination comes first
    page.fill("#f-name", "customerio")
    page.uncheck("input[name=sources][value=default]")
    page.check("input[name=sources][value=website]")
    page.fill("#f-site_id", SITE_ID)
    page.fill("#f-api_key", API_KEY)
    page.click("summary:has-text('Advanced settings')")
    expect(page.locator("#f-batch_size")).to_have_value("100")  # defaults are shown
    page.fill("#f-track_url", emulator.url)
    page.click("button:has-text('Test credentials')")
    expect(page.locator("#check-result")).to_contain_text("credentials accepted")
    shoot(page, "04-connection-form")
    page.click("button:has-text('Save and start delivering')")
    expect(page.locator(".flash.ok")).to_contain_text("saved and delivering")
    expect(page.locator("h1 .badge")).to_have_text("Delivering")


def test_connect_customerio_watch_events_fix_credentials_and_replay(
    page: Any, server: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    url = server.url
    sign_in(page, url)
    shoot(page, "02-overview-empty")
    write_key = create_source(page, url)
    add_connection(page, url, emulator)

    # A second connection of the same name is refused, with the reason next to the field.
    page.goto(url + "/dashboard/connections/new?destination=customerio")
    page.fill("#f-name", "customerio")
    page.fill("#f-site_id", SITE_ID)
    page.fill("#f-api_key", "another-key")
    page.click("button:has-text('Save and start delivering')")
    expect(page.locator(".field-error")).to_contain_text("already exists")
    expect(page.locator("#f-api_key")).to_have_value("")  # a secret is never sent back

    # Events sent with the real SDK show up live, with what the connection made of them.
    page.goto(url + "/dashboard/debugger?source=website")
    expect(page.locator("#live")).to_have_text("Live")
    sdk = Client(write_key, host=url, sync_mode=True)
    sdk.identify("ada", {"email": "ada@example.com", "plan": "pro"})
    sdk.track("ada", "Signed Up", {"trial": True})
    signed_up = page.locator("details.msg", has_text="Signed Up")
    expect(signed_up.locator("summary .fates")).to_have_text("customerio: delivered")
    identify = page.locator("details.msg[data-type=identify]")
    expect(identify.locator("summary .fates")).to_have_text("customerio: delivered")
    signed_up.locator("summary").click()
    expect(signed_up.locator(".body")).to_contain_text('"event": "Signed Up"')
    expect(signed_up.locator(".body")).to_contain_text("POST /api/v2/batch")
    shoot(page, "05-debugger")
    wait_until(
        lambda: (p := emulator.state.person("ada")) and len(p.activity) == 1, what="ada's event"
    )

    # The counters show them.
    page.goto(url + "/dashboard/connections/customerio")
    reload_until(page, "[data-stat=delivered] .value", "2")
    shoot(page, "06-connection-overview")

    # Customer.io stops accepting the key: the failure is explained, nothing is lost.
    emulator.faults.set_credentials(api_key=NEW_KEY)
    sdk.track("ada", "Upgraded", {"plan": "team"})
    page.reload()
    expect(page.locator(".alert.bad")).to_contain_text("rejected the credentials", timeout=20_000)
    expect(page.locator("h1 .badge")).to_have_text("Credentials rejected")
    wait_until(
        lambda: (page.reload(), page.locator("table.reasons").count() > 0)[1],
        what="the reason in the failure table",
    )
    expect(page.locator("table.reasons")).to_contain_text("credentials rejected")
    # The held call's retrying fate is stored a moment after the failure is: reload until then.
    reload_until(page, "[data-stat=retrying] .value", "1")
    shoot(page, "07-credentials-rejected")

    # Fix the key in the form: the stored key is never shown; Save restarts delivery at once.
    page.click("a:has-text('Edit')")
    expect(page.locator("#f-api_key")).to_have_value("")
    assert "leave empty to keep" in (page.get_attribute("#f-api_key", "placeholder") or "")
    page.fill("#f-api_key", NEW_KEY)
    page.click("button:has-text('Test credentials')")
    expect(page.locator("#check-result")).to_contain_text("credentials accepted")
    page.click("button:has-text('Save changes')")
    expect(page.locator("h1 .badge")).to_have_text("Delivering")
    wait_until(
        lambda: (p := emulator.state.person("ada")) and len(p.activity) == 2,
        timeout=30,
        what="the held event after the fix",
    )

    # A call Customer.io refuses for good is dead-lettered; replay it from the dashboard.
    emulator.faults.fail_next(1, status=400)
    sdk.track("ada", "Invited Teammate", {"count": 1})
    page.goto(url + "/dashboard/dead-letters?connection=customerio")
    wait_until(
        lambda: (page.reload(), page.locator("table tbody a").count() > 0)[1],
        what="a dead letter in the list",
    )
    shoot(page, "08-dead-letters")
    page.locator("table tbody a").first.click()
    expect(page.locator("h1")).to_contain_text("Dead letter #")
    expect(page.locator("pre.code").last).to_contain_text("Invited Teammate")
    shoot(page, "09-dead-letter")
    page.click("button:has-text('Replay')")
    expect(page.locator(".flash.ok")).to_contain_text("Replay queued")
    person = wait_until(
        lambda: (p := emulator.state.person("ada")) and len(p.activity) == 3 and p,
        what="the replayed event",
    )
    assert [a.name for a in person.activity] == ["Signed Up", "Upgraded", "Invited Teammate"]
    wait_until(
        lambda: (page.reload(), page.locator(".badge.ok", has_text="Replayed").count() > 0)[1],
        what="the dead letter marked replayed",
    )

    page.goto(url + "/dashboard/")
    shoot(page, "10-overview")
    page.goto(url + "/dashboard/connections/customerio")
    shoot(page, "11-connection-after-replay")

    # Whatever the pages showed, the saved key never reached the browser.
    for path in ("/dashboard/connections/customerio/edit", "/dashboard/connections/customerio"):
        page.goto(url + path)
        assert NEW_KEY not in page.content()
    assert NEW_KEY not in server.output.read_text()
