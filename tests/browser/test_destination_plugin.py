"""A destination Turnout has never heard of, loaded by module name: the dashboard offers it in the
Add flow with its own fields, the management API saves it, and a lane delivers through it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support import ADMIN_TOKEN, TurnoutProcess, free_port, wait_until

pytestmark = pytest.mark.browser

TESTS = Path(__file__).resolve().parents[1]
TOKEN_ONE = "echo-token-4b1f"
TOKEN_TWO = "echo-token-9c2e"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TurnoutProcess]:
    config = tmp_path / "turnout.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{free_port()}"
data_dir = "{tmp_path / "data"}"
admin_token = "{ADMIN_TOKEN}"

[log]
sync = "normal"

[delivery]
linger_ms = 5
"""
    )
    pythonpath = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {"TURNOUT_DESTINATION_MODULES": "support_destinations.echo", "PYTHONPATH": pythonpath}
    with TurnoutProcess(config, env=env) as process:
        yield process


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_plugin_destination_is_offered_saved_and_delivered_to(
    page: Any, server: TurnoutProcess, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    url = server.url
    page.goto(url + "/dashboard/login")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")

    # Step one: the destination is chosen among every registered one, by title.
    page.goto(url + "/dashboard/connections")
    page.click("a:has-text('Add a connection')")
    choices = page.locator("nav.destinations a.destination h2")
    expect(choices).to_have_text(["Customer.io", "Webhook", "Echo file"])
    page.screenshot(path=str(shots / "01-choose-destination.png"), full_page=True)
    page.click("a.destination:has-text('Echo file')")

    # Step two: its own fields, each shown as its kind asks.
    expect(page.locator("h1")).to_have_text("New Echo file connection")
    expect(page.locator("#f-token")).to_have_attribute("type", "password")
    expect(page.locator("#f-style option")).to_have_text(["short", "full"])
    expect(page.locator("#f-style")).to_have_value("short")
    expect(page.locator("#f-batch_size")).not_to_be_visible()  # advanced: collapsed
    assert page.locator("#f-site_id").count() == 0  # nothing of another destination
    one = tmp_path / "one.jsonl"
    page.fill("#f-name", "echo-one")
    page.fill("#f-path", str(one))
    page.fill("#f-token", TOKEN_ONE)
    page.locator("input[name='labels.name']").first.fill("team")
    page.locator("input[name='labels.value']").first.fill("growth")
    page.select_option("#f-style", "full")
    page.check("#f-uppercase")
    page.click("summary:has-text('Advanced settings')")
    expect(page.locator("#f-batch_size")).to_have_value("10")  # the field's default
    page.click("button:has-text('Test credentials')")
    expect(page.locator("#check-result")).to_have_text(re.compile(f"can write to {tmp_path}"))
    page.screenshot(path=str(shots / "02-echo-form.png"), full_page=True)
    page.click("button:has-text('Save and start delivering')")
    expect(page.locator(".flash.ok")).to_contain_text("saved and delivering")
    expect(page.locator("h1 .badge")).to_have_text("Delivering")
    expect(page.locator(".heading .destination")).to_have_text(f"Echo to {one}")
    page.screenshot(path=str(shots / "03-echo-connection.png"), full_page=True)

    # The edit form shows the table, never the secret.
    page.click("a:has-text('Edit')")
    expect(page.locator("input[name='labels.name']").first).to_have_value("team")
    expect(page.locator("#f-token")).to_have_value("")
    assert TOKEN_ONE not in page.content()

    # The management API lists it with its fields, and saves a second connection to it.
    destinations = {d["name"]: d for d in server.api("GET", "/destinations").json()}
    assert destinations["echo"]["title"] == "Echo file"
    assert [(f["name"], f["type"], f["advanced"]) for f in destinations["echo"]["settings"]] == [
        ("path", "text", False),
        ("token", "password", False),
        ("labels", "table", False),
        ("style", "select", False),
        ("uppercase", "checkbox", False),
        ("batch_size", "number", True),
    ]
    two = tmp_path / "two.jsonl"
    created = server.api(
        "POST",
        "/connections",
        json={
            "name": "echo-two",
            "destination": "echo",
            "sources": ["default"],
            "settings": {"path": str(two), "token": TOKEN_TWO},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["settings"]["token"] == "ec••••••••2e"
    assert created.json()["status"]["state"] == "ok"
    refused = server.api(
        "POST",
        "/connections",
        json={"name": "echo-3", "destination": "echo", "settings": {"path": "x", "token": "t"}},
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == "path: must be absolute, got 'x'"

    # A call of the default source goes out through both lanes.
    write_key = server.api("GET", "/sources/default").json()["write_key"]
    answer = server.post("/v1/track", {"userId": "u-1", "event": "Signed Up"}, write_key)
    assert answer.status_code == 200
    wait_until(lambda: lines(one) and lines(two), what="a line in each echo file")
    [first] = lines(one)
    [second] = lines(two)
    assert first == {
        "event": "SIGNED UP",
        "labels": {"team": "growth"},
        "messageId": second["messageId"],
        "token": TOKEN_ONE,
        "type": "track",
        "userId": "u-1",
    }
    assert second == {
        "event": "Signed Up",
        "labels": {},
        "messageId": first["messageId"],
        "token": TOKEN_TWO,
        "type": "track",
    }
    page.goto(url + "/dashboard/connections")
    expect(page.locator("table")).to_contain_text("Echo file")
    page.screenshot(path=str(shots / "04-connections.png"), full_page=True)
    assert TOKEN_ONE not in page.content() and TOKEN_TWO not in page.content()
    assert TOKEN_ONE not in server.output.read_text()
