"""A stored key goes only to the address it was saved for: a credentials check or an edit that
reuses it ("leave the key empty to keep it") while pointing the connection elsewhere is refused,
through the management API and the dashboard alike; and a check never repeats what an address of
the user's choosing answered. A second local server plays that address and records what reached
it."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from support import ADMIN_TOKEN, API_KEY, SITE_ID, TurnoutProcess
from turnout.emulators.customerio import CustomerIOEmulator
from turnout.store.secrets import mask

PROBE_BODY = b"SECRET-PROBE: what an internal service would answer"
NEW_KEY = "key-typed-again-789"


class Probe:
    """An HTTP server answering every request 500 with `PROBE_BODY`, keeping each request's
    path and Authorization header."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str | None]] = []
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                probe.received.append((self.path, self.headers.get("Authorization")))
                self.send_response(500)
                self.send_header("Content-Length", str(len(PROBE_BODY)))
                self.end_headers()
                self.wfile.write(PROBE_BODY)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def probe() -> Iterator[Probe]:
    made = Probe()
    made.thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()


REFUSED = {
    "code": "invalid",
    "field": "api_key",
    "message": "api_key: enter the API key again: the address changed (track_url), and a stored"
    " secret is only sent to the address it was saved for",
}


def settings(track_url: str, api_key: str = "") -> dict[str, str]:
    return {"site_id": SITE_ID, "api_key": api_key, "region": "us", "track_url": track_url}


def generic_500(probe: Probe) -> str:
    return (
        f"{probe.url} answered 500: a server error (what a track_url address answers is not shown)"
    )


# -- management API --------------------------------------------------------------------------


def test_api_check_with_the_stored_key_and_a_new_address_is_refused(
    turnout: TurnoutProcess, probe: Probe
) -> None:
    for key in ("", mask(API_KEY)):  # left empty, or the masked value sent back
        body = {"settings": settings(probe.url, key), "stored_from": "cio"}
        answer = turnout.api("POST", "/connections/test", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json() == REFUSED
    assert probe.received == []


def test_api_edit_of_the_address_alone_is_refused_and_nothing_changes(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, probe: Probe
) -> None:
    answer = turnout.api("PATCH", "/connections/cio", json={"settings": settings(probe.url)})
    assert answer.status_code == 422, answer.text
    assert answer.json() == REFUSED
    assert turnout.api("GET", "/connections/cio").json()["settings"]["track_url"] == emulator.url
    assert turnout.api("POST", "/connections/cio/test").json()["ok"] is True
    assert probe.received == []


def test_the_stored_key_still_serves_its_own_address_with_another_region(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    body = {"settings": {**settings(str(emulator.url)), "region": "eu"}, "stored_from": "cio"}
    answer = turnout.api("POST", "/connections/test", json=body).json()
    assert answer["ok"] is True and answer["message"] == "credentials accepted (region us)"


def test_api_check_never_repeats_what_a_chosen_address_answered(
    turnout: TurnoutProcess, probe: Probe
) -> None:
    body = {"settings": settings(probe.url, NEW_KEY), "stored_from": "cio"}
    answer = turnout.api("POST", "/connections/test", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": False, "message": generic_500(probe), "warnings": []}
    assert "SECRET-PROBE" not in answer.text
    # The key typed for this address, and only it, went there.
    assert probe.received == [("/api/v1/accounts/region", basic_auth(NEW_KEY))]


def test_an_edit_with_the_key_typed_again_is_saved(turnout: TurnoutProcess, probe: Probe) -> None:
    body = {"settings": settings(probe.url, NEW_KEY)}
    answer = turnout.api("PATCH", "/connections/cio", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["track_url"] == probe.url


def basic_auth(key: str) -> str:
    return "Basic " + base64.b64encode(f"{SITE_ID}:{key}".encode()).decode()


# -- dashboard -------------------------------------------------------------------------------


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def signed_in(turnout: TurnoutProcess) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=turnout.url, timeout=20)
    page = client.get("/dashboard/login")
    client.post("/dashboard/login", data={"token": ADMIN_TOKEN, "csrf_token": _csrf(page.text)})
    edit = client.get("/dashboard/connections/cio/edit")
    assert edit.status_code == 200, edit.text[:500]
    return client, _csrf(edit.text)


def test_dashboard_check_with_the_stored_key_and_a_new_address_is_refused(
    turnout: TurnoutProcess, probe: Probe
) -> None:
    client, csrf = signed_in(turnout)
    answer = client.post(
        "/dashboard/connections/check",
        data={**settings(probe.url), "stored_from": "cio"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert REFUSED["message"] in answer.text
    assert probe.received == []


def test_dashboard_edit_of_the_address_alone_is_refused(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, probe: Probe
) -> None:
    client, csrf = signed_in(turnout)
    answer = client.post(
        "/dashboard/connections/cio/edit",
        data={**settings(probe.url), "sources": "web", "csrf_token": csrf},
    )
    assert answer.status_code == 422
    assert REFUSED["message"] in answer.text
    assert turnout.api("GET", "/connections/cio").json()["settings"]["track_url"] == emulator.url
    assert probe.received == []


def test_dashboard_check_never_repeats_what_a_chosen_address_answered(
    turnout: TurnoutProcess, probe: Probe
) -> None:
    client, csrf = signed_in(turnout)
    answer = client.post(
        "/dashboard/connections/check",
        data={**settings(probe.url, NEW_KEY), "stored_from": "cio"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert generic_500(probe) in answer.text
    assert "SECRET-PROBE" not in answer.text
    assert probe.received == [("/api/v1/accounts/region", basic_auth(NEW_KEY))]
