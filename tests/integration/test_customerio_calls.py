"""Every call type through the running server into Customer.io (the emulator is the oracle).

Each test runs twice: against a Turnout whose Customer.io connection uses `api = "v2"` (batches)
and one using `api = "v1"` (a request per operation). The server and emulator are shared by the
tests of one mode, so every test uses its own people and objects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import API_KEY, SITE_ID, TurnoutProcess, wait_until, write_config
from turnout.destinations.customerio.settings import REGION_URLS, parse_settings
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, Person, run_emulator

IOS = {
    "device": {"token": "tok-ios", "model": "iPhone15,2", "type": "ios"},
    "os": {"name": "iOS", "version": "17.4"},
    "app": {"version": "2.1.0"},
    "locale": "en-GB",
}
ANDROID = {
    "device": {"token": "tok-android", "model": "Pixel 8"},
    "os": {"name": "Android", "version": "14"},
}


@dataclass
class Setup:
    api: str
    turnout: TurnoutProcess
    emulator: CustomerIOEmulator

    def id(self, name: str) -> str:
        """A person/object id of this test in this mode."""
        return f"{self.api}-{name}"

    def send(self, path: str, body: dict[str, Any]) -> str:
        """Post one call and return its messageId."""
        message_id = body.setdefault("messageId", str(uuid.uuid4()))
        response = self.turnout.post(path, body)
        assert response.status_code == 200, response.text
        return str(message_id)

    def person(self, name: str, ready: Callable[[Person], bool] = lambda p: True) -> Person:
        """The person once they exist and `ready` holds for them."""
        person_id = self.id(name)

        def check() -> Person | None:
            person = self.emulator.state.person(person_id)
            return person if person is not None and ready(person) else None

        found: Person = wait_until(check, what=f"person {person_id}")
        return found

    def fate(self, message_id: str) -> dict[str, Any]:
        """The message's delivery record for the Customer.io connection, once resolved."""

        def check() -> dict[str, Any] | None:
            response = self.turnout.api("GET", f"/messages/{message_id}")
            if response.status_code == 404:  # not recorded yet
                return None
            assert response.status_code == 200, response.text
            for record in response.json()["deliveries"]:
                if record["connection"] == "cio" and record["fate"] != "retrying":
                    return dict(record)
            return None

        record: dict[str, Any] = wait_until(check, what=f"the fate of {message_id}")
        return record


@pytest.fixture(scope="module", params=["v2", "v1"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    api: str = request.param
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emulator:
        directory: Path = tmp_path_factory.mktemp(f"turnout-{api}")
        config = write_config(directory, str(emulator.url), settings=f'api = "{api}"')
        with TurnoutProcess(config) as turnout:
            yield Setup(api, turnout, emulator)


# -- the call types ----------------------------------------------------------------------------


def test_identify_creates_the_person_with_traits(setup: Setup) -> None:
    setup.send(
        "/v1/identify",
        {
            "userId": setup.id("identify"),
            "traits": {
                "email": "ada@example.com",
                "plan": "pro",
                "createdAt": "2024-05-01T12:34:56.789Z",
                "address": {"city": "London"},
            },
        },
    )
    person = setup.person("identify", lambda p: "plan" in p.attributes)
    assert person.email == "ada@example.com"
    assert person.attributes["plan"] == "pro"
    assert person.attributes["created_at"] == 1714566896
    assert person.attributes["address"] == {"city": "London"}


def test_track_records_an_event(setup: Setup) -> None:
    setup.send(
        "/v1/track",
        {
            "userId": setup.id("track"),
            "event": "Order Completed",
            "properties": {"total": 49.5, "items": [{"sku": "a"}], "at": "2024-05-01T00:00:00Z"},
            "timestamp": "2024-05-01T12:00:00Z",
            "sentAt": "2024-05-01T12:00:00Z",
        },
    )
    person = setup.person("track", lambda p: len(p.activity) == 1)
    (event,) = person.activity
    assert (event.type, event.name) == ("event", "Order Completed")
    assert event.data == {"total": 49.5, "items": [{"sku": "a"}], "at": 1714521600}
    assert event.id is not None and len(event.id) == 26  # the dedupe ULID


def test_page_records_a_page_view(setup: Setup) -> None:
    setup.send(
        "/v1/page",
        {"userId": setup.id("page"), "name": "Pricing", "properties": {"url": "https://x.io/p"}},
    )
    person = setup.person("page", lambda p: len(p.activity) == 1)
    (view,) = person.activity
    assert (view.type, view.name, view.data) == ("page", "Pricing", {"url": "https://x.io/p"})


def test_screen_records_a_screen_view(setup: Setup) -> None:
    setup.send(
        "/v1/screen",
        {"userId": setup.id("screen"), "name": "Settings", "properties": {"tab": "billing"}},
    )
    person = setup.person("screen", lambda p: len(p.activity) == 1)
    (view,) = person.activity
    assert (view.type, view.name, view.data) == ("screen", "Settings", {"tab": "billing"})


def test_group_creates_the_object_and_relates_the_person(setup: Setup) -> None:
    group_id = setup.id("acme")
    setup.send(
        "/v1/group",
        {"userId": setup.id("group"), "groupId": group_id, "traits": {"name": "Acme", "seats": 50}},
    )
    obj = wait_until(lambda: setup.emulator.state.object("1", group_id), what="the object")
    assert obj.attributes == {"name": "Acme", "seats": 50}
    person = setup.person("group", lambda p: bool(p.relationships))
    assert ("1", group_id) in person.relationships


def test_alias_merges_the_previous_person_into_the_user(setup: Setup) -> None:
    old, new = setup.id("alias-old"), setup.id("alias-new")
    setup.send("/v1/identify", {"userId": old, "traits": {"plan": "free", "source": "ads"}})
    setup.send("/v1/identify", {"userId": new, "traits": {"plan": "pro"}})
    setup.person("alias-old", lambda p: "source" in p.attributes)
    setup.person("alias-new", lambda p: "plan" in p.attributes)
    setup.send("/v1/alias", {"userId": new, "previousId": old})
    wait_until(lambda: setup.emulator.state.person(old) is None, what="the merge")
    merged = setup.person("alias-new")
    assert merged.attributes["plan"] == "pro"  # the primary's value wins
    assert merged.attributes["source"] == "ads"  # the secondary's fills in
    assert any(m.primary == merged.cio_id for m in setup.emulator.state.merges)


# -- reserved events ---------------------------------------------------------------------------


def test_device_created_or_updated_adds_the_device_only(setup: Setup) -> None:
    setup.send(
        "/v1/track",
        {"userId": setup.id("device"), "event": "Device Created or Updated", "context": IOS},
    )
    person = setup.person("device", lambda p: "tok-ios" in p.devices)
    device = person.devices["tok-ios"]
    assert device.platform == "ios"
    assert device.attributes == {
        "app_version": "2.1.0",
        "device_os": "17.4",
        "device_model": "iPhone15,2",
        "device_locale": "en-GB",
    }
    assert person.activity == type(person.activity)()  # not an ordinary event


def test_application_installed_adds_the_device_and_records_the_event(setup: Setup) -> None:
    setup.send(
        "/v1/track",
        {"userId": setup.id("installed"), "event": "Application Installed", "context": ANDROID},
    )
    person = setup.person("installed", lambda p: bool(p.devices) and bool(p.activity))
    assert person.devices["tok-android"].platform == "android"
    assert [a.name for a in person.activity] == ["Application Installed"]


def test_device_deleted_removes_the_device(setup: Setup) -> None:
    user = setup.id("device-deleted")
    setup.send("/v1/track", {"userId": user, "event": "Device Created or Updated", "context": IOS})
    setup.person("device-deleted", lambda p: "tok-ios" in p.devices)
    setup.send("/v1/track", {"userId": user, "event": "Device Deleted", "context": IOS})
    person = setup.person("device-deleted", lambda p: not p.devices)
    assert person.activity == type(person.activity)()


def test_user_deleted_deletes_the_person(setup: Setup) -> None:
    user = setup.id("deleted")
    setup.send("/v1/identify", {"userId": user, "traits": {"plan": "pro"}})
    setup.person("deleted")
    setup.send("/v1/track", {"userId": user, "event": "User Deleted"})
    wait_until(lambda: setup.emulator.state.person(user) is None, what="the deletion")


def test_user_suppressed_and_unsuppressed(setup: Setup) -> None:
    user = setup.id("suppressed")
    setup.send("/v1/identify", {"userId": user, "traits": {"plan": "pro"}})
    setup.person("suppressed")
    setup.send("/v1/track", {"userId": user, "event": "User Suppressed"})
    wait_until(lambda: ("id", user) in setup.emulator.state.suppressed, what="the suppression")
    assert setup.emulator.state.person(user) is None  # suppressing deletes the profile
    setup.send("/v1/track", {"userId": user, "event": "User Unsuppressed"})
    wait_until(lambda: ("id", user) not in setup.emulator.state.suppressed, what="unsuppression")


def test_object_deleted_deletes_the_object(setup: Setup) -> None:
    user, group_id = setup.id("object-deleted"), setup.id("doomed")
    setup.send("/v1/group", {"userId": user, "groupId": group_id, "traits": {"name": "Doomed"}})
    wait_until(lambda: setup.emulator.state.object("1", group_id), what="the object")
    setup.send(
        "/v1/track",
        {"userId": user, "event": "Object Deleted", "properties": {"objectId": group_id}},
    )
    wait_until(lambda: setup.emulator.state.object("1", group_id) is None, what="the deletion")
    assert ("1", group_id) not in setup.person("object-deleted").relationships


def test_relationship_deleted_removes_only_the_relationship(setup: Setup) -> None:
    user, group_id = setup.id("unrelated"), setup.id("kept")
    setup.send("/v1/group", {"userId": user, "groupId": group_id, "traits": {"name": "Kept"}})
    setup.person("unrelated", lambda p: ("1", group_id) in p.relationships)
    setup.send(
        "/v1/track",
        {"userId": user, "event": "Relationship Deleted", "properties": {"objectId": group_id}},
    )
    setup.person("unrelated", lambda p: ("1", group_id) not in p.relationships)
    obj = setup.emulator.state.object("1", group_id)
    assert obj is not None and obj.attributes == {"name": "Kept"}


# -- the promises --------------------------------------------------------------------------------


def test_anonymous_page_view_joins_the_person_at_identify(setup: Setup) -> None:
    anonymous_id = setup.id("visitor")
    setup.send("/v1/page", {"anonymousId": anonymous_id, "name": "Landing"})
    wait_until(
        lambda: setup.emulator.state.anonymous_activity(anonymous_id), what="the anonymous page"
    )
    setup.send(
        "/v1/identify",
        {"userId": setup.id("signed-up"), "anonymousId": anonymous_id, "traits": {"plan": "pro"}},
    )
    person = setup.person("signed-up", lambda p: bool(p.activity))
    assert [(a.type, a.name) for a in person.activity] == [("page", "Landing")]
    assert setup.emulator.state.anonymous_activity(anonymous_id) == []


def test_page_without_name_url_or_path_is_a_page_view_named_page_view(setup: Setup) -> None:
    setup.send("/v1/page", {"userId": setup.id("unnamed-page"), "properties": {"title": "Hi"}})
    person = setup.person("unnamed-page", lambda p: len(p.activity) == 1)
    (view,) = person.activity
    assert (view.type, view.name, view.data) == ("page", "Page View", {"title": "Hi"})


def test_anonymous_page_without_name_or_url_is_named_page_view(setup: Setup) -> None:
    visitor = setup.id("unnamed-visitor")
    setup.send("/v1/page", {"anonymousId": visitor})
    (view,) = wait_until(
        lambda: setup.emulator.state.anonymous_activity(visitor), what="the anonymous page"
    )
    assert (view.type, view.name, view.data) == ("page", "Page View", {})


def test_screen_without_a_name_is_a_screen_view_named_screen_view(setup: Setup) -> None:
    setup.send("/v1/screen", {"userId": setup.id("unnamed-screen"), "properties": {"tab": "a"}})
    person = setup.person("unnamed-screen", lambda p: len(p.activity) == 1)
    (view,) = person.activity
    assert (view.type, view.name, view.data) == ("screen", "Screen View", {"tab": "a"})


def test_an_anonymous_id_equal_to_the_user_id_is_not_recorded(setup: Setup) -> None:
    user = setup.id("same-ids")
    setup.send("/v1/identify", {"userId": user, "anonymousId": user, "traits": {"plan": "pro"}})
    setup.send("/v1/track", {"userId": user, "anonymousId": user, "event": "Clicked"})
    person = setup.person("same-ids", lambda p: "plan" in p.attributes and bool(p.activity))
    assert person.anonymous_ids == []
    assert "anonymous_id" not in person.attributes
    # What went over the wire about the person: the update and the event, no anonymous_id update.
    assert sent_about(setup, user) == [
        {"action": "identify", "attributes": {"plan": "pro"}},
        {"action": "event", "name": "Clicked", "attributes": {}},
    ]


_ADDRESS_AND_TIME = ("type", "identifiers", "timestamp", "id")


def sent_about(setup: Setup, user: str) -> list[dict[str, Any]]:
    """The operations Customer.io accepted about one person, in the order they arrived, in the v2
    item shape whichever API the connection uses (timestamps and dedupe ids left out)."""
    found: list[dict[str, Any]] = []
    for request in setup.emulator.requests:
        if request.status != 200:
            continue
        if request.path == "/api/v2/batch":
            found.extend(
                {k: v for k, v in item.items() if k not in _ADDRESS_AND_TIME}
                for item in request.body["batch"]
                if item.get("identifiers") == {"id": user}
            )
        elif request.path == f"/api/v1/customers/{user}":
            body = {k: v for k, v in request.body.items() if k != "_timestamp"}
            found.append({"action": "identify", "attributes": body})
        elif request.path == f"/api/v1/customers/{user}/events":
            body = request.body
            found.append({"action": body["type"], "name": body["name"], "attributes": body["data"]})
    return found


def test_45_traits_all_reach_the_person(setup: Setup) -> None:
    traits = {f"trait_{n:02}": n for n in range(45)}
    message_id = setup.send("/v1/identify", {"userId": setup.id("many"), "traits": traits})
    person = setup.person("many", lambda p: all(k in p.attributes for k in traits))
    assert {k: person.attributes[k] for k in traits} == traits
    assert setup.fate(message_id)["fate"] == "delivered"


def test_integrations_disabling_customerio_sends_nothing_and_records_filtered(
    setup: Setup,
) -> None:
    user = setup.id("opted-out")
    message_id = setup.send(
        "/v1/track",
        {"userId": user, "event": "Secret", "integrations": {"Customer.io": False}},
    )
    record = setup.fate(message_id)
    assert record["fate"] == "filtered"
    assert "Customer.io" in record["detail"]
    assert setup.emulator.state.person(user) is None
    assert not [r for r in setup.emulator.requests if user in json.dumps(r.body) + r.path]


def test_event_name_over_the_limit_is_cut_and_recorded_as_adjusted(setup: Setup) -> None:
    name = "Checkout Step " + "x" * 136  # 150 characters
    message_id = setup.send("/v1/track", {"userId": setup.id("long-name"), "event": name})
    person = setup.person("long-name", lambda p: bool(p.activity))
    assert [a.name for a in person.activity] == [name[:100]]
    record = setup.fate(message_id)
    assert record["fate"] == "adjusted"
    assert "event name" in record["detail"]


# -- the region (the EU host cannot be reached from tests) --------------------------------------


@pytest.mark.parametrize(
    ("region", "base_url"),
    [("us", "https://track.customer.io"), ("eu", "https://track-eu.customer.io"), (" EU ", None)],
)
def test_region_chooses_the_track_api_host(region: str, base_url: str | None) -> None:
    settings = parse_settings({"site_id": "s", "api_key": "k", "region": region})
    assert settings.base_url == (base_url or REGION_URLS["eu"])


def test_track_url_overrides_the_region() -> None:
    settings = parse_settings(
        {"site_id": "s", "api_key": "k", "region": "eu", "track_url": "http://127.0.0.1:9/"}
    )
    assert settings.region == "eu"
    assert settings.base_url == "http://127.0.0.1:9"


def test_an_unknown_region_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="region"):
        parse_settings({"site_id": "s", "api_key": "k", "region": "asia"})
