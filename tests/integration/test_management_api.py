"""The management API as a script or the CLI uses it: a real `turnout serve`, the emulator as
Customer.io, and every answer checked for its shape (`code`, `message`) and for secrets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import API_KEY, SITE_ID, WRITE_KEY, TurnoutProcess, basic, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

SECRET = "sk-live-0123456789abcdef-SECRET"  # long enough that its mask differs from it


class Recorder:
    """Calls the API and keeps every answer, so the test can prove no secret ever left."""

    def __init__(self, turnout: TurnoutProcess) -> None:
        self.turnout = turnout
        self.texts: list[str] = []

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response = self.turnout.api(method, path, **kw)
        self.texts.append(response.text)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) >= {"code", "message"}, body
        assert response.status_code < 500, response.text
        return response


@pytest.fixture
def api(turnout: TurnoutProcess, emulator: CustomerIOEmulator) -> Iterator[Recorder]:
    recorder = Recorder(turnout)
    yield recorder
    leaked = [t for t in recorder.texts if SECRET in t or API_KEY in t]
    assert not leaked, leaked
    log = turnout.output.read_text()
    assert SECRET not in log and API_KEY not in log


def connection_body(emulator: CustomerIOEmulator, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "cio-two",
        "sources": ["web"],
        "settings": {"site_id": SITE_ID, "api_key": SECRET, "track_url": emulator.url},
    }
    body.update(changes)
    return body


def events_of(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.activity] if found else []


# -- authorisation ---------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/sources"),
    ("POST", "/sources"),
    ("GET", "/sources/web"),
    ("PATCH", "/sources/web"),
    ("POST", "/sources/web/rotate"),
    ("DELETE", "/sources/web"),
    ("GET", "/destinations"),
    ("GET", "/connections"),
    ("POST", "/connections"),
    ("GET", "/connections/cio"),
    ("PATCH", "/connections/cio"),
    ("DELETE", "/connections/cio"),
    ("POST", "/connections/test"),
    ("POST", "/connections/cio/test"),
    ("POST", "/connections/cio/pause"),
    ("POST", "/connections/cio/resume"),
    ("POST", "/connections/cio/redeliver"),
    ("GET", "/connections/cio/overview"),
    ("GET", "/dead-letters"),
    ("GET", "/dead-letters/1"),
    ("POST", "/dead-letters/1/replay"),
    ("POST", "/dead-letters/replay"),
    ("GET", "/messages/m-1"),
    ("GET", "/rejects"),
]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}],
)
def test_every_endpoint_refuses_a_missing_or_wrong_token(
    turnout: TurnoutProcess, headers: dict[str, str]
) -> None:
    for n, (method, path) in enumerate(ENDPOINTS):
        # Each from its own address: wrong tokens are throttled per address after ten.
        client = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
        response = httpx.request(
            method,
            turnout.url + "/api/v1" + path,
            headers={**headers, **client},
            json={},
            timeout=10,
        )
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert turnout.api("GET", "/connections/cio").json()["enabled"] is True  # nothing changed


def test_openapi_description_is_served_with_the_token(turnout: TurnoutProcess) -> None:
    spec = turnout.api("GET", "/openapi.json").json()
    assert {"/sources", "/connections", "/dead-letters/replay"} <= set(spec["paths"])
    assert spec["servers"] == [{"url": "/api/v1"}]
    anonymous = httpx.get(turnout.url + "/api/v1/openapi.json", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"


def test_unknown_route_and_wrong_method_answer_code_and_message(api: Recorder) -> None:
    assert api("GET", "/nothing-here").json()["code"] == "not_found"
    assert api("PUT", "/sources").json()["code"] == "method_not_allowed"


# -- sources ---------------------------------------------------------------------------------


def test_source_lifecycle_create_rename_rotate_delete(api: Recorder) -> None:
    created = api("POST", "/sources", json={"name": "app"})
    assert created.status_code == 201
    key = created.json()["write_key"]
    assert key.startswith("wk_")
    assert api("GET", "/sources/app").json()["write_key"] == key
    duplicate = api("POST", "/sources", json={"name": "app"})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["message"]
    taken = api("POST", "/sources", json={"name": "other", "write_key": key})
    assert taken.status_code == 409 and taken.json()["field"] == "write_key"
    bad = api("POST", "/sources", json={"name": "no spaces"})
    assert bad.status_code == 422 and bad.json()["field"] == "name"

    renamed = api("PATCH", "/sources/app", json={"name": "mobile"})
    assert renamed.json()["name"] == "mobile"
    assert api("GET", "/sources/app").status_code == 404

    track = {"userId": "u-1", "event": "Opened"}
    assert api.turnout.post("/v1/track", track, write_key=key).status_code == 200
    rotated = api("POST", "/sources/mobile/rotate").json()["write_key"]
    assert rotated != key
    assert api.turnout.post("/v1/track", track, write_key=key).status_code == 401
    assert api.turnout.post("/v1/track", track, write_key=rotated).status_code == 200

    assert api("DELETE", "/sources/mobile").status_code == 204
    assert [s["name"] for s in api("GET", "/sources").json()] == ["web"]


def test_a_source_feeding_a_connection_cannot_be_deleted(api: Recorder) -> None:
    response = api("DELETE", "/sources/web")
    assert response.status_code == 409
    assert "cio" in response.json()["message"]


def test_renaming_a_source_keeps_its_connections_fed(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    api("PATCH", "/sources/web", json={"name": "site"})
    assert api("GET", "/connections/cio").json()["sources"] == ["site"]
    api.turnout.post("/v1/track", {"userId": "r-1", "event": "After Rename"})
    wait_until(lambda: events_of(emulator, "r-1") == ["After Rename"], what="delivery")


# -- connections -----------------------------------------------------------------------------


def test_created_connection_delivers_at_once_and_never_shows_its_key(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    emulator.faults.set_credentials(api_key=SECRET)
    created = api("POST", "/connections", json=connection_body(emulator))
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["settings"]["api_key"] == "sk••••••••ET"
    assert view["status"]["state"] == "ok"
    api.turnout.post("/v1/track", {"userId": "c-1", "event": "Created"})
    wait_until(lambda: "Created" in events_of(emulator, "c-1"), what="delivery by cio-two")
    listed = {c["name"]: c for c in api("GET", "/connections").json()}
    assert listed["cio"]["settings"]["api_key"] == "••••••••"
    assert listed["cio-two"]["settings"]["api_key"] == "sk••••••••ET"


def test_connection_names_are_unique_with_a_clear_message(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    response = api("POST", "/connections", json=connection_body(emulator, name="cio"))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "name_taken" and body["field"] == "name"
    assert "a connection named 'cio' already exists" in body["message"]


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"api_key": SECRET}, "site_id", "site_id: required"),
        ({"site_id": "s", "api_key": SECRET, "region": "mars"}, "region", 'must be "us" or "eu"'),
        ({"site_id": "s", "api_key": SECRET, "batch_size": 0}, "batch_size", ">= 1"),
        ({"site_id": "s", "api_key": SECRET, "batch_size": "many"}, "batch_size", "int"),
        ({"site_id": "s", "api_key": SECRET, "colour": "red"}, "colour", "not a setting"),
        ({"site_id": "s", "api_key": SECRET, "track_url": "ftp://x"}, "track_url", "http"),
    ],
)
def test_settings_are_validated_by_the_destination_and_errors_name_the_field(
    api: Recorder, emulator: CustomerIOEmulator, settings: dict[str, Any], field: str, words: str
) -> None:
    response = api("POST", "/connections", json=connection_body(emulator, settings=settings))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert body["message"].startswith(f"{field}:") and words in body["message"]
    assert api("GET", "/connections/cio-two").status_code == 404


def test_request_validation_errors_name_the_field(api: Recorder) -> None:
    response = api("POST", "/connections", json={"name": "x", "sources": []})
    assert response.status_code == 422
    assert response.json()["field"] == "settings"
    unknown_source = api(
        "POST",
        "/connections",
        json={"name": "x", "sources": ["nope"], "settings": {"site_id": "s", "api_key": "k"}},
    )
    assert unknown_source.json()["field"] == "sources"
    assert api("GET", "/dead-letters", params={"limit": 0}).json()["field"] == "limit"
    assert api("POST", "/connections/cio/redeliver", json={"since": -1}).status_code == 422


def test_editing_without_the_key_keeps_the_stored_key(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    emulator.faults.set_credentials(api_key=SECRET)
    api("POST", "/connections", json=connection_body(emulator))
    for key in ("", "sk••••••••ET"):  # left empty, or the masked value sent back
        settings = {"site_id": SITE_ID, "api_key": key, "track_url": emulator.url, "batch_size": 50}
        updated = api("PATCH", "/connections/cio-two", json={"settings": settings})
        assert updated.status_code == 200, updated.text
        assert updated.json()["settings"]["batch_size"] == 50
    assert api("POST", "/connections/cio-two/test").json()["ok"] is True
    api.turnout.post("/v1/track", {"userId": "e-1", "event": "After Edit"})
    wait_until(lambda: "After Edit" in events_of(emulator, "e-1"), what="delivery after edit")


def test_credentials_check_reports_accepted_and_rejected(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    saved = api("POST", "/connections/cio/test").json()
    assert saved["ok"] is True and "credentials accepted" in saved["message"]
    wrong = api(
        "POST",
        "/connections/test",
        json={"settings": {"site_id": SITE_ID, "api_key": SECRET, "track_url": emulator.url}},
    ).json()
    assert wrong["ok"] is False and "rejected" in wrong["message"]
    borrowed = api(
        "POST",
        "/connections/test",
        json={
            "settings": {"site_id": SITE_ID, "api_key": "", "track_url": emulator.url},
            "stored_from": "cio",
        },
    ).json()
    assert borrowed["ok"] is True


def test_pause_holds_calls_and_resume_delivers_them(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    paused = api("POST", "/connections/cio/pause").json()
    assert paused["enabled"] is False and paused["status"]["state"] == "paused"
    api.turnout.post("/v1/track", {"userId": "p-1", "event": "While Paused"})
    time.sleep(0.5)
    assert events_of(emulator, "p-1") == []
    resumed = api("POST", "/connections/cio/resume").json()
    assert resumed["status"]["state"] == "ok"
    wait_until(lambda: events_of(emulator, "p-1") == ["While Paused"], what="held call")


def test_delete_stops_delivery_and_redeliver_resends(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    api.turnout.post("/v1/track", {"userId": "d-1", "event": "First"})
    wait_until(lambda: events_of(emulator, "d-1") == ["First"], what="first delivery")
    again = api("POST", "/connections/cio/redeliver", json={"since": 0})
    assert again.status_code == 200 and again.json()["from_offset"] == 0
    wait_until(
        lambda: api("GET", "/connections/cio/overview").json()["funnel"]["delivered"] >= 1,
        what="the redelivered fate",
    )
    assert api("DELETE", "/connections/cio").status_code == 204
    assert api("GET", "/connections/cio").status_code == 404
    api.turnout.post("/v1/track", {"userId": "d-1", "event": "After Delete"})
    time.sleep(0.5)
    assert "After Delete" not in events_of(emulator, "d-1")


# -- delivery overview, dead letters, traces, rejects ----------------------------------------


def test_overview_counts_fates_and_explains_failures(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    for i in range(3):
        api.turnout.post("/v1/track", {"userId": "o-1", "event": f"E{i}"})
    emulator.faults.fail_next(1, status=400)
    api.turnout.post("/v1/track", {"userId": "o-2", "event": "Refused"})

    def numbers() -> dict[str, Any]:
        return dict(api("GET", "/connections/cio/overview", params={"window": "15m"}).json())

    found = wait_until(
        lambda: (
            (n := numbers())["funnel"]["delivered"] == 3 and n["funnel"]["dead_lettered"] == 1 and n
        ),
        what="three delivered and one dead letter",
    )
    assert found["funnel"]["received"] == 4
    assert sum(found["series"]["delivered"]) == 3
    [reason] = found["reasons"]
    assert reason["fate"] == "dead_lettered" and "400" in reason["reason"]
    assert len(reason["sample_message_ids"]) == 1
    assert api("GET", "/connections/cio/overview", params={"window": "1y"}).status_code == 422


def test_dead_letters_list_inspect_replay_and_trace(
    api: Recorder, emulator: CustomerIOEmulator
) -> None:
    emulator.faults.fail_next(2, status=400)
    api.turnout.post("/v1/track", {"userId": "x-1", "event": "One"})
    api.turnout.post("/v1/track", {"userId": "x-2", "event": "Two"})
    letters = wait_until(
        lambda: (
            len(found := api("GET", "/dead-letters", params={"connection": "cio"}).json()) == 2
            and found
        ),
        what="two dead letters",
    )
    first = api("GET", f"/dead-letters/{letters[0]['id']}").json()
    assert first["payload"]["event"] == "One"
    assert "400" in first["reason"] and first["request"].startswith("POST /api/v2/batch")

    trace = api("GET", f"/messages/{first['message_id']}").json()
    assert trace["deliveries"][0]["fate"] == "dead_lettered"
    assert api("GET", "/messages/never-seen").status_code == 404

    assert api("POST", f"/dead-letters/{first['id']}/replay").json() == {"replaying": 1}
    wait_until(lambda: events_of(emulator, "x-1") == ["One"], what="replayed One")
    wait_until(
        lambda: api("POST", f"/dead-letters/{first['id']}/replay").status_code == 409,
        what="a second replay refused",
    )
    rest = api("POST", "/dead-letters/replay", json={"connection": "cio", "reason": "400"})
    assert rest.json()["replaying"] == 1
    wait_until(lambda: events_of(emulator, "x-2") == ["Two"], what="replayed Two")
    assert api("GET", "/dead-letters/999999").status_code == 404
    assert api("POST", "/dead-letters/replay", json={"connection": "nope"}).status_code == 404


def test_rejects_are_listed_with_their_reason(api: Recorder) -> None:
    response = httpx.post(
        api.turnout.url + "/v1/track",
        json={"event": "No Identity"},
        headers=basic(WRITE_KEY),
        timeout=10,
    )
    assert response.status_code == 400
    rejects = wait_until(
        lambda: api("GET", "/rejects", params={"source": "web"}).json(), what="a reject"
    )
    assert rejects[0]["source"] == "web" and rejects[0]["message"]
