"""The dashboard's Privacy page over HTTP, against a running `turnout serve`: make a request,
list requests, follow one's steps and connections; a forged form is refused."""

from __future__ import annotations

import re

import httpx

from support import ADMIN_TOKEN, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _signed_in(turnout: TurnoutProcess) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    signed = client.post(
        "/dashboard/login", data={"token": ADMIN_TOKEN, "csrf_token": _csrf(page.text)}
    )
    assert signed.status_code == 303, signed.text
    return client, _csrf(client.get("/dashboard/privacy").text)


def _rows(html: str, attribute: str) -> dict[str, str]:
    """`data-<attribute>` rows of a table: key -> the row's text, tags and spaces squeezed."""
    found = re.findall(rf'<tr data-{attribute}="([^"]+)">(.*?)</tr>', html, re.S)
    return {key: " ".join(re.sub(r"<[^>]+>", " ", row).split()) for key, row in found}


def test_privacy_page_makes_lists_and_shows_requests(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    client, csrf = _signed_in(turnout)
    turnout.post("/v1/identify", {"userId": "dash-1", "traits": {"plan": "pro"}})
    wait_until(lambda: emulator.state.person("dash-1") is not None, what="dash-1 to exist")

    made = client.post(
        "/dashboard/privacy",
        data={"csrf_token": csrf, "ids": "dash-1,\n dash-2 \n\n", "action": "suppress"},
    )
    assert made.status_code == 303
    request_id = made.headers["location"].removeprefix("/dashboard/privacy/")
    assert re.fullmatch(r"pr_[0-9a-f]+", request_id)
    view = turnout.api("GET", f"/privacy/requests/{request_id}").json()
    assert (view["action"], view["requested_by"], view["user_ids"]) == ("suppress", "dashboard", 2)

    def finished() -> str | None:
        page = client.get(f"/dashboard/privacy/{request_id}").text
        return page if 'data-status="done"' in page else None

    page = wait_until(finished, what="the request to finish on its page")
    assert _rows(page, "step") == {"suppress": "suppress done 2"}
    assert _rows(page, "connection") == {"cio": "cio done 2"}
    assert emulator.state.is_suppressed("dash-1") and emulator.state.is_suppressed("dash-2")

    # The suppressed person's next call is answered, kept out, and counted on both pages.
    assert turnout.post("/v1/track", {"userId": "dash-2", "event": "Nope"}).status_code == 200
    index = client.get("/dashboard/privacy").text
    assert _rows(index, "request")[request_id].endswith("suppress 2 dashboard done")
    assert re.search(r'data-stat="suppressed_calls"><span class="value">1<', index)
    assert re.search(r'data-stat="suppressed_ids"><span class="value">2<', index)
    panel = client.get("/dashboard/connections/cio/overview").text
    assert "Calls of suppressed people not taken in from its sources since start: 1" in panel
    overview = client.get("/dashboard/").text
    assert re.search(r'data-suppressed="web"><a href="/dashboard/privacy">1</a>', overview)

    # anonymousIds, and a mistake refused naming the field, nothing recorded.
    anonymous = client.post(
        "/dashboard/privacy",
        data={"csrf_token": csrf, "ids": "anon-9", "action": "delete", "anonymous": "true"},
    )
    assert anonymous.status_code == 303
    anonymous_id = anonymous.headers["location"].rsplit("/", 1)[1]
    assert turnout.api("GET", f"/privacy/requests/{anonymous_id}").json()["anonymous_ids"] == 1
    refused = client.post(
        "/dashboard/privacy", data={"csrf_token": csrf, "ids": " , \n", "action": "delete"}
    )
    assert refused.status_code == 400
    assert "user_ids: give at least one id (or anonymous_ids)" in refused.text
    assert len(turnout.api("GET", "/privacy/requests").json()) == 2
    missing = client.get("/dashboard/privacy/pr_0")
    assert missing.status_code == 404 and "no privacy request pr_0" in missing.text


def test_a_forged_privacy_form_is_refused(turnout: TurnoutProcess) -> None:
    client, _ = _signed_in(turnout)
    forged = client.post(
        "/dashboard/privacy", data={"csrf_token": "forged", "ids": "u-1", "action": "delete"}
    )
    assert forged.status_code == 403
    assert turnout.api("GET", "/privacy/requests").json() == []
    anonymous = httpx.post(
        turnout.url + "/dashboard/privacy", data={"ids": "u-1", "action": "delete"}, timeout=10
    )
    assert anonymous.status_code == 303 and "/dashboard/login" in anonymous.headers["location"]
    assert turnout.api("GET", "/privacy/requests").json() == []
