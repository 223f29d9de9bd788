"""The Privacy page in Chromium, against a running `turnout serve` delivering to the Customer.io
emulator: delete a person by pasting their id, then suppress them; each request is listed with
its action, who made it and its status until it is done, Customer.io loses that person and keeps
the other, and the suppressed person's next call is counted on the connection's overview. A
mistake (no id, too many) is refused on the page and makes no request."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from screens import shoot

from support import ADMIN_TOKEN, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.browser


def _send(turnout: TurnoutProcess, person: str) -> None:
    """An identify and a track of `person` through the tracking API."""
    identify = {"userId": person, "traits": {"email": f"{person}@example.com"}}
    assert turnout.post("/v1/identify", identify).status_code == 200
    track = {"userId": person, "event": "Signed Up", "properties": {"plan": "pro"}}
    assert turnout.post("/v1/track", track).status_code == 200


def _delivered(turnout: TurnoutProcess, person: str) -> list[str]:
    """The fates recorded for the person's calls (they reach the store after Customer.io)."""
    trace = turnout.api("GET", "/people", params={"user_id": person}).json()
    return [d["fate"] for call in trace["calls"] for d in call["deliveries"]]


def _events(emulator: CustomerIOEmulator, person: str) -> list[str] | None:
    """The person's events in Customer.io, or None when it holds no such person."""
    found = emulator.state.person(person)
    return None if found is None else [a.name for a in found.events("event")]


def _sign_in_to_privacy(page: Any, url: str) -> None:
    page.goto(url + "/dashboard/privacy")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    page.fill("#token", ADMIN_TOKEN)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Privacy")


def _submit(page: Any, ids: str, action: str) -> None:
    page.fill("#p-ids", ids)
    page.select_option("#p-action", action)
    page.click("button:has-text('Submit request')")


def _listed(page: Any, request_id: str) -> list[str]:
    """The request's row in the list, its "accepted" time (relative, so changing) left out."""
    cells = page.locator(f"tr[data-request='{request_id}'] td").all_inner_texts()
    return [cell.strip() for i, cell in enumerate(cells) if i != 1]


def _listed_until_done(page: Any, url: str, request_id: str, action: str) -> None:
    """Reload the list until the request reads done: a request finishes once Customer.io has
    answered, a moment after it was accepted."""
    page.goto(url + "/dashboard/privacy")
    wait_until(
        lambda: (page.reload(), _listed(page, request_id))[1][-1:] == ["done"],
        timeout=20,
        what=f"{request_id} to be listed as done",
    )
    assert _listed(page, request_id) == [request_id, action, "1", "dashboard", "done"]


def _table(page: Any, selector: str) -> list[list[str]]:
    """A table's body, row by row, each cell's text."""
    rows = page.locator(f"{selector} tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def _made(page: Any, action: str) -> str:
    """The id of the request just submitted, from the page it leads to."""
    expect(page).to_have_url(re.compile(r"/dashboard/privacy/pr_[0-9a-f]+$"))
    request_id = str(page.locator("h1").inner_text()).strip()
    expect(page.locator(".flash.ok")).to_have_text(
        f"Request {request_id} accepted: {action}, 1 id(s)."
    )
    return request_id


def test_delete_then_suppress_a_person_from_the_privacy_page(
    page: Any, turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    url = turnout.url
    for person in ("ada", "bo"):
        _send(turnout, person)
    wait_until(
        lambda: [_delivered(turnout, p) for p in ("ada", "bo")] == [["delivered"] * 2] * 2,
        what="the two calls of each recorded as delivered",
    )
    assert (_events(emulator, "ada"), _events(emulator, "bo")) == (["Signed Up"], ["Signed Up"])

    _sign_in_to_privacy(page, url)
    expect(page.locator("#requests tbody")).to_have_text("No privacy requests yet.")
    shoot(page, "privacy-01-empty")

    # Delete ada: listed as made from the dashboard, done once Customer.io has deleted her.
    _submit(page, "ada", "delete")
    deleted = _made(page, "delete")
    _listed_until_done(page, url, deleted, "delete")
    shoot(page, "privacy-02-delete-done")
    assert _events(emulator, "ada") is None
    assert _events(emulator, "bo") == ["Signed Up"]
    assert _delivered(turnout, "ada") == []  # her records went from Turnout too
    assert _delivered(turnout, "bo") == ["delivered", "delivered"]

    page.click(f"tr[data-request='{deleted}'] a")
    expect(page.locator("h1")).to_have_text(deleted)
    expect(page.locator("[data-status]")).to_have_text("done")
    assert _table(page, "#steps") == [
        ["log", "done", "2", ""],
        ["store", "done", "2", "deliveries: 2, dead_letters: 0, rejects: 0"],
    ]
    assert _table(page, "#connections") == [["cio", "done", "1", ""]]
    shoot(page, "privacy-03-delete-detail")

    # Suppress ada: her next call is answered, kept out, and counted on the overview.
    page.goto(url + "/dashboard/privacy")
    _submit(page, "ada", "suppress")
    suppressed = _made(page, "suppress")
    _listed_until_done(page, url, suppressed, "suppress")
    assert _listed(page, deleted) == [deleted, "delete", "1", "dashboard", "done"]
    expect(page.locator("#requests tbody tr")).to_have_count(2)
    expect(page.locator("#requests tbody tr").first).to_have_attribute("data-request", suppressed)
    assert emulator.state.is_suppressed("ada")

    page.goto(url + "/dashboard/connections/cio")
    expect(page.locator("#overview [data-stat=suppressed_calls]")).to_have_count(0)
    again = {"userId": "ada", "event": "Came Back"}
    assert turnout.post("/v1/track", again).json() == {"success": True}
    page.reload()
    expect(page.locator("#overview [data-stat=suppressed_calls]")).to_have_text(
        "Calls of suppressed people not taken in from its sources since start: 1 (Privacy)."
    )
    shoot(page, "privacy-04-overview-suppressed")
    page.goto(url + "/dashboard/privacy")
    expect(page.locator("[data-stat=suppressed_calls] .value")).to_have_text("1")
    expect(page.locator("[data-stat=suppressed_ids] .value")).to_have_text("1")
    assert _delivered(turnout, "ada") == []
    assert _events(emulator, "ada") is None
    assert _events(emulator, "bo") == ["Signed Up"]


def test_the_privacy_page_refuses_no_ids_or_too_many_and_makes_no_request(
    page: Any, turnout: TurnoutProcess
) -> None:
    _sign_in_to_privacy(page, turnout.url)

    _submit(page, " ,\n , ", "delete")
    expect(page.locator(".field-error")).to_have_text(
        "user_ids: give at least one id (or anonymous_ids)"
    )
    expect(page.locator("#p-ids")).to_have_value(" ,\n , ")

    # Separated by commas: Chromium types a pasted text of 5,001 lines far too slowly.
    too_many = ", ".join(f"user-{i}" for i in range(5001))
    _submit(page, too_many, "suppress")
    expect(page.locator(".field-error")).to_have_text(
        "user_ids: 5001 ids (with anonymous_ids) is over the limit of 5000"
    )
    expect(page.locator("#p-action")).to_have_value("suppress")
    shoot(page, "privacy-05-too-many")

    expect(page.locator("#requests tbody")).to_have_text("No privacy requests yet.")
    expect(page.locator("[data-stat=suppressed_ids] .value")).to_have_text("0")
    assert turnout.api("GET", "/privacy/requests").json() == []
    assert turnout.post("/v1/track", {"userId": "user-1", "event": "Kept"}).status_code == 200
    calls = turnout.api("GET", "/people", params={"user_id": "user-1"}).json()["calls"]
    assert [c["message"]["event"] for c in calls] == ["Kept"]  # user-1 was not suppressed
