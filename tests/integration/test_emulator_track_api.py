"""The emulated Track API over real HTTP: what a client sends and what Customer.io would hold."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from support import started_url, wait_until
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

SITE, KEY = (
    "site>?",
    "key~~?",
)  # base64 of these differs between the standard and URL-safe alphabets
ULID_A = "01BX5ZZKBKACTAV9WEVGEMMVRY"
ULID_B = "01BX5ZZKBKACTAV9WEVGEMMVRZ"
JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def server() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id=SITE, api_key=KEY)) as emu:
        yield emu


@pytest.fixture
def emu(server: CustomerIOEmulator) -> Iterator[CustomerIOEmulator]:
    original = msgspec.structs.asdict(server.config)
    server.reset()
    yield server
    server.configure(**original)


@pytest.fixture
def client(emu: CustomerIOEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=started_url(emu), auth=(SITE, KEY)) as c:
        yield c


def errors(response: httpx.Response) -> list[str]:
    return response.json()["meta"]["errors"]


# ---- transport and auth ------------------------------------------------------------------------


def test_success_is_empty_object_with_newline(client: httpx.Client) -> None:
    r = client.put("/api/v1/customers/u1", json={"plan": "pro"})
    assert r.status_code == 200
    assert r.content == b"{}\n"
    assert r.headers["content-type"] == JSON_TYPE


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("padded", [True, False])
def test_basic_auth_in_either_alphabet(emu: CustomerIOEmulator, encode: Any, padded: bool) -> None:
    token = encode(f"{SITE}:{KEY}".encode()).decode()
    token = token if padded else token.rstrip("=")
    r = httpx.put(
        f"{emu.url}/api/v1/customers/u1", json={}, headers={"Authorization": f"Basic {token}"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize("auth", [None, (SITE, "wrong"), ("other", KEY)])
def test_bad_credentials_get_customerio_401_body(emu: CustomerIOEmulator, auth: Any) -> None:
    for call in (
        lambda: httpx.put(f"{emu.url}/api/v1/customers/u1", json={}, auth=auth),
        lambda: httpx.post(f"{emu.url}/api/v2/batch", json={"batch": []}, auth=auth),
    ):
        r = call()
        assert r.status_code == 401
        assert r.content == b'{\n  "meta": {\n    "error": "Unauthorized request"\n  }\n}\n'
        assert r.headers["content-type"] == JSON_TYPE
    assert emu.state.people == []


def test_auth_and_region_endpoints(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    assert client.get("/auth").json() == {"meta": {"message": "nice credentials."}}
    assert client.get("/api/v1/accounts/region").json() == {
        "url": "https://track.customer.io",
        "region": "us",
        "environment_id": 1,
    }
    emu.configure(region="eu", environment_id=42)
    assert client.get("/api/v1/accounts/region").json() == {
        "url": "https://track-eu.customer.io",
        "region": "eu",
        "environment_id": 42,
    }
    assert httpx.get(f"{emu.url}/api/v1/accounts/region").status_code == 401


def test_unknown_path_is_404(client: httpx.Client) -> None:
    assert client.post("/api/v1/nothing", json={}).status_code == 404


# ---- identifiers in paths ------------------------------------------------------------------------


def test_encoded_slashes_stay_in_the_identifier(
    client: httpx.Client, emu: CustomerIOEmulator
) -> None:
    assert client.put("/api/v1/customers/user%2Fwith%2Fslashes", json={"a": 1}).status_code == 200
    assert (
        client.post(
            "/api/v1/customers/user%2Fwith%2Fslashes/events", json={"name": "x"}
        ).status_code
        == 200
    )
    person = emu.state.person("user/with/slashes")
    assert person is not None and person.id == "user/with/slashes"
    assert [a.name for a in person.activity] == ["x"]


def test_email_and_cio_paths(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/Jane%40Example.com", json={"first_name": "Jane"})
    person = emu.state.person("jane@example.com")
    assert person is not None and person.email == "Jane@Example.com" and person.id is None
    client.put(f"/api/v1/customers/cio_{person.cio_id}", json={"id": "jane-1"})
    assert emu.state.person("jane-1") is person
    client.put("/api/v1/customers/cio_deadbeef", json={"a": 1})  # unknown cio_id: dropped
    assert len(emu.state.people) == 1


# ---- v1 endpoints ------------------------------------------------------------------------------


def test_identify_merges_attributes_and_null_removes(
    client: httpx.Client, emu: CustomerIOEmulator
) -> None:
    client.put("/api/v1/customers/u1", json={"email": "u1@x.io", "plan": "basic", "age": 3})
    client.put("/api/v1/customers/u1", json={"plan": "pro", "age": None})
    person = emu.state.person("u1@x.io")
    assert person is not None
    assert person.attributes["plan"] == "pro" and "age" not in person.attributes
    assert person.attributes_as_strings()["plan"] == "pro"


def test_update_only_and_identify_ordering(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/ghost", json={"a": 1, "_update": True})
    assert emu.state.person("ghost") is None
    client.put("/api/v1/customers/u1", json={"plan": "new", "_timestamp": 2000})
    client.put("/api/v1/customers/u1", json={"plan": "old", "_timestamp": 1000})
    person = emu.state.person("u1")
    assert person is not None and person.attributes["plan"] == "new"
    assert "_timestamp" not in person.attributes and "_update" not in person.attributes


def test_events_pages_screens(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/u1", json={})
    client.post(
        "/api/v1/customers/u1/events",
        json={"name": "purchase", "data": {"price": 23.45}, "timestamp": 1700000000},
    )
    client.post("/api/v1/customers/u1/events", json={"name": "https://x.io/p", "type": "page"})
    client.post("/api/v1/customers/u1/events", json={"name": "home", "type": "screen"})
    person = emu.state.person("u1")
    assert person is not None
    assert [(a.type, a.name) for a in person.activity] == [
        ("event", "purchase"),
        ("page", "https://x.io/p"),
        ("screen", "home"),
    ]
    assert person.activity[0].data == {"price": 23.45}
    assert person.activity[0].timestamp == 1700000000


def test_event_dedupe_by_id(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    for _ in range(3):
        client.post("/api/v1/customers/u1/events", json={"name": "e", "id": ULID_A})
    client.post(
        "/api/v2/entity",
        json={
            "type": "person",
            "identifiers": {"id": "u1"},
            "action": "event",
            "name": "e",
            "id": ULID_A,
        },
    )
    client.post("/api/v1/customers/u1/events", json={"name": "e", "id": ULID_B})
    person = emu.state.person("u1")
    assert person is not None and [a.id for a in person.activity] == [ULID_A, ULID_B]
    assert emu.state.counters["duplicates"] == 3


def test_sends_per_event_id_count_every_request_the_read_model_dedupes(
    client: httpx.Client, emu: CustomerIOEmulator
) -> None:
    emu.faults.fail_next(1, status=503)
    for _ in range(3):  # the first is answered 503: it was sent all the same
        client.post("/api/v1/customers/u1/events", json={"name": "e", "id": ULID_A})
    batch = [
        {"type": "person", "identifiers": {"id": "u1"}, "action": "event", "name": "e", "id": i}
        for i in (ULID_A, ULID_B)
    ] + [{"type": "person", "identifiers": {"id": "u1"}, "action": "identify"}]
    assert client.post("/api/v2/batch", json={"batch": batch}).status_code == 200
    person = emu.state.person("u1")
    assert person is not None and [a.id for a in person.activity] == [ULID_A, ULID_B]
    assert emu.requests.sends_by_id == {ULID_A: 4, ULID_B: 1}
    sends = httpx.get(f"{emu.url}/_emulator/sends").json()
    assert sends == {"ids": 2, "sends": 5, "repeated": {ULID_A: 4}}
    records = list(emu.requests)
    assert all(r.received_at <= r.answered_at for r in records)
    assert [r.status for r in records] == [503, 200, 200, 200]


def test_v1_validation_texts(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    r = client.put("/api/v1/customers/u1", json={"id": "u2", "token": "x" * 1001})
    assert r.status_code == 400
    assert r.text == (
        '{\n  "meta": {\n    "errors": [\n'
        '      "id attribute and identifier are not the same value",\n'
        "      \"value for attribute 'token' cannot be longer than 1000 bytes\"\n"
        "    ]\n  }\n}\n"
    )
    r = client.post(
        "/api/v1/customers/u1/events", json={"name": "https://x.io/" + "p" * 100, "type": "page"}
    )
    assert errors(r) == ["event name cannot be longer than 100 bytes"]
    r = client.post("/api/v1/events", json={"anonymous_id": "a", "id": "uuid-not-ulid"})
    assert errors(r) == [
        "event name is required",
        "event id must be a ULID (26 Crockford base32 characters)",
    ]
    r = client.put(
        "/api/v1/customers/u1", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and errors(r) == ["request body is not valid JSON"]
    assert emu.state.people == []


def test_devices_in_every_client_shape(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    # node: extras under attributes; python/ruby: extras beside id; go: last_used as a string.
    client.put(
        "/api/v1/customers/u1/devices",
        json={
            "device": {
                "id": "tok-node",
                "platform": "ios",
                "last_used": 1700000000,
                "attributes": {"app_version": "2.1"},
            }
        },
    )
    client.put(
        "/api/v1/customers/u1/devices",
        json={"device": {"id": "tok-py", "platform": "android", "app_version": "3.0"}},
    )
    client.put(
        "/api/v1/customers/u1/devices",
        json={
            "device": {
                "id": "tok-go",
                "platform": "ios",
                "last_used": "1700000001",
                "attributes": {},
            }
        },
    )
    person = emu.state.person("u1")
    assert person is not None
    assert person.devices["tok-node"].attributes == {"app_version": "2.1"}
    assert person.devices["tok-py"].attributes == {"app_version": "3.0"}
    assert person.devices["tok-go"].last_used == 1700000001
    client.request("DELETE", "/api/v1/customers/u1/devices/tok-py", json={})
    client.delete("/api/v1/customers/u1/devices/never-there")
    assert set(person.devices) == {"tok-node", "tok-go"}
    r = client.put("/api/v1/customers/u1/devices", json={"device": {"platform": "web"}})
    assert errors(r) == ["device id is required", "device platform must be one of: ios, android"]


def test_delete_suppress_unsuppress(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/u1", json={"email": "u1@x.io"})
    assert client.request("DELETE", "/api/v1/customers/nobody", json={}).status_code == 200
    client.delete("/api/v1/customers/u1")
    assert emu.state.person("u1") is None
    client.put("/api/v1/customers/u1", json={"email": "u1@x.io"})
    client.post("/api/v1/customers/u1/suppress", json={})
    assert client.put("/api/v1/customers/u1@x.io", json={"a": 1}).status_code == 200
    assert emu.state.people == []
    client.post("/api/v1/customers/u1/unsuppress")
    client.put("/api/v1/customers/u1", json={})
    person = emu.state.person("u1")
    assert person is not None and person.email is None


def test_merge_customers(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/p1", json={"email": "p@x.io", "plan": "pro"})
    client.put("/api/v1/customers/s1", json={"plan": "free", "city": "Oslo"})
    client.post("/api/v1/customers/s1/events", json={"name": "old"})
    r = client.post(
        "/api/v1/merge_customers", json={"primary": {"email": "p@x.io"}, "secondary": {"id": "s1"}}
    )
    assert r.status_code == 200
    primary = emu.state.person("p1")
    assert primary is not None and primary.attributes["city"] == "Oslo"
    assert primary.attributes["plan"] == "pro" and [a.name for a in primary.activity] == ["old"]
    assert emu.state.person("s1") is None
    r = client.post(
        "/api/v1/merge_customers",
        json={"primary": {"id": "p1", "email": "p@x.io"}, "secondary": {"id": "x"}},
    )
    assert r.status_code == 400 and "error" in r.json()["meta"]


def test_unsubscribe_needs_no_auth(emu: CustomerIOEmulator, client: httpx.Client) -> None:
    client.put("/api/v1/customers/u1", json={})
    emu.state.register_delivery("dlv-1", "u1")
    r = httpx.post(f"{emu.url}/unsubscribe/dlv-1", json={"unsubscribe": True})
    assert r.status_code == 200
    person = emu.state.person("u1")
    assert person is not None and person.unsubscribed
    r = httpx.post(
        f"{emu.url}/unsubscribe/dlv-1",
        content=b'{"unsubscribe": true}',
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 400


# ---- anonymous activity --------------------------------------------------------------------------


def test_anonymous_events_merge_on_identify_and_for_five_minutes_after(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    client.post("/api/v1/events", json={"name": "before", "anonymous_id": "anon-1"})
    assert [a.name for a in emu.state.anonymous_activity("anon-1")] == ["before"]
    client.put("/api/v1/customers/u1", json={"anonymous_id": "anon-1"})
    client.post("/api/v1/events", json={"name": "after", "anonymous_id": "anon-1"})
    person = emu.state.person("u1")
    assert person is not None and [a.name for a in person.activity] == ["before", "after"]
    assert emu.state.anonymous_activity("anon-1") == []
    assert "anonymous_id" not in person.attributes


def test_anonymous_events_after_the_window_stay_anonymous(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    emu.configure(anonymous_merge_window=0.2)
    client.put("/api/v1/customers/u1", json={"anonymous_id": "anon-2"})
    time.sleep(0.3)
    client.post(
        "/api/v2/entity",
        json={
            "type": "person",
            "identifiers": {"anonymous_id": "anon-2"},
            "action": "event",
            "name": "late",
        },
    )
    person = emu.state.person("u1")
    assert person is not None and list(person.activity) == []
    assert [a.name for a in emu.state.anonymous_activity("anon-2")] == ["late"]


def test_anonymous_id_is_single_use(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/u1", json={"anonymous_id": "anon-3"})
    client.put("/api/v1/customers/u2", json={"anonymous_id": "anon-3"})
    client.post("/api/v1/events", json={"name": "e", "anonymous_id": "anon-3"})
    u1, u2 = emu.state.person("u1"), emu.state.person("u2")
    assert u1 is not None and u2 is not None
    assert len(u1.activity) == 1 and len(u2.activity) == 0


# ---- v2 ------------------------------------------------------------------------------------------


def test_v2_batch_partial_failure_is_207_and_keeps_valid_items(
    client: httpx.Client,
    emu: CustomerIOEmulator,
) -> None:
    r = client.post(
        "/api/v2/batch",
        json={
            "batch": [
                {
                    "type": "person",
                    "identifiers": {"id": "u1"},
                    "action": "identify",
                    "attributes": {"plan": "pro"},
                },
                {"type": "person", "identifiers": {"id": "u1"}, "action": "event"},
                {
                    "type": "person",
                    "identifiers": {"id": "u1"},
                    "action": "identify",
                    "attributes": {"plan": "x" * 1001},
                },
                {"type": "person", "identifiers": {"id": "u1"}, "action": "event", "name": "ok"},
            ]
        },
    )
    assert r.status_code == 207
    assert r.json() == {
        "errors": [
            {
                "batch_index": 1,
                "reason": "required",
                "field": "name",
                "message": "event name is required",
            },
            {
                "batch_index": 2,
                "reason": "invalid",
                "field": "attributes.plan",
                "message": "value for attribute 'plan' cannot be longer than 1000 bytes",
            },
        ]
    }
    person = emu.state.person("u1")
    assert person is not None and person.attributes["plan"] == "pro"
    assert [a.name for a in person.activity] == ["ok"]
    emu.configure(batch_errors_status=200)
    r = client.post("/api/v2/batch", json={"batch": [{"type": "nope"}]})
    assert r.status_code == 200 and r.json()["errors"][0]["field"] == "type"


def test_v2_size_limits(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    big = {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "identify",
        "attributes": {f"a{i}": "x" * 900 for i in range(40)},
    }  # ~36 KB
    r = client.post("/api/v2/entity", json=big)
    assert r.status_code == 400 and "32768" in r.json()["errors"][0]["message"]
    r = client.post(
        "/api/v2/batch",
        json={
            "batch": [big, {"type": "person", "identifiers": {"id": "u2"}, "action": "identify"}]
        },
    )
    assert r.status_code == 207 and r.json()["errors"][0]["batch_index"] == 0
    assert emu.state.person("u2") is not None and emu.state.person("u1") is None
    r = client.post("/api/v2/batch", json={"batch": [big] * 15})  # > 500 KB
    assert r.status_code == 400
    r = client.post("/api/v2/batch", json={"items": []})
    assert r.status_code == 400 and "errors" in r.json()
    r = client.post("/api/v2/entity", json={"type": "person", "action": "identify"})
    assert r.status_code == 400
    assert r.json() == {
        "errors": [
            {"reason": "required", "field": "identifiers", "message": "identifiers are required"}
        ]
    }


def test_v2_every_action(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    person = {"type": "person", "identifiers": {"id": "u1"}}
    items: list[dict[str, Any]] = [
        {
            **person,
            "action": "identify",
            "attributes": {"email": "u1@x.io"},
            "cio_relationships": [
                {
                    "identifiers": {"object_type_id": "1", "object_id": "acme"},
                    "relationship_attributes": {"role": "admin"},
                }
            ],
        },
        {**person, "action": "page", "name": "/pricing"},
        {**person, "action": "screen", "name": "Dashboard"},
        {**person, "action": "add_device", "device": {"token": "t1", "platform": "ios"}},
        {**person, "action": "add_device", "device": {"token": "t2", "platform": "android"}},
        {**person, "action": "delete_device", "device": {"token": "t2"}},
        {"type": "person", "identifiers": {"id": "u2"}, "action": "identify"},
        {"type": "person", "action": "merge", "primary": {"id": "u1"}, "secondary": {"id": "u2"}},
        {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": "globex"},
            "action": "identify",
            "attributes": {"name": "Globex"},
            "cio_relationships": [{"identifiers": {"email": "u1@x.io"}}],
        },
        {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": "initech"},
            "action": "identify",
        },
        {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": "initech"},
            "action": "delete",
        },
        {
            "type": "object",
            "identifiers": {"object_type_id": "1", "anonymous_id": "obj-anon"},
            "action": "identify_anonymous",
            "attributes": {"name": "Anon Co"},
        },
        {
            **person,
            "action": "delete_relationships",
            "cio_relationships": [{"identifiers": {"object_type_id": "1", "object_id": "globex"}}],
        },
        {
            **person,
            "action": "add_relationships",
            "cio_relationships": [{"identifiers": {"object_type_id": "2", "object_id": "team"}}],
        },
        {
            "type": "object",
            "identifiers": {"object_type_id": "2", "object_id": "team"},
            "action": "add_relationships",
            "cio_relationships": [{"identifiers": {"id": "u3"}}],
        },
        {
            "type": "object",
            "identifiers": {"object_type_id": "2", "object_id": "team"},
            "action": "delete_relationships",
            "cio_relationships": [{"identifiers": {"id": "u3"}}],
        },
        {"type": "delivery", "identifiers": {"id": "dlv-1"}, "action": "event", "name": "opened"},
        {"type": "person", "identifiers": {"id": "gone"}, "action": "identify"},
        {"type": "person", "identifiers": {"id": "gone"}, "action": "delete"},
        {"type": "person", "identifiers": {"id": "bad"}, "action": "suppress"},
        {"type": "person", "identifiers": {"id": "bad"}, "action": "identify"},
        {"type": "person", "identifiers": {"id": "bad"}, "action": "unsuppress"},
    ]
    for item in items:
        r = client.post("/api/v2/entity", json=item)
        assert r.status_code == 200, (item, r.text)
    u1 = emu.state.person("u1")
    assert u1 is not None and u1.email == "u1@x.io"
    assert [(a.type, a.name) for a in u1.activity] == [
        ("page", "/pricing"),
        ("screen", "Dashboard"),
    ]
    assert set(u1.devices) == {"t1"}
    assert set(u1.relationships) == {("1", "acme"), ("2", "team")}
    assert u1.relationships[("1", "acme")] == {"role": "admin"}
    assert emu.state.person("u2") is None and len(emu.state.merges) == 1
    objects = emu.state.objects
    assert set(objects) == {("1", "acme"), ("1", "globex"), ("2", "team"), ("1", "anon:obj-anon")}
    assert objects[("1", "globex")].attributes == {"name": "Globex"}
    assert objects[("2", "team")].relationships.keys() == {u1.cio_id}
    assert emu.state.deliveries["dlv-1"][0]["name"] == "opened"
    assert emu.state.person("gone") is None and emu.state.person("bad") is None
    assert emu.state.suppressed == set()


# ---- the same workload through v1 and v2 gives the same read model ------------------------------

V1_WORKLOAD: list[tuple[str, str, Any]] = [
    ("PUT", "/api/v1/customers/u1", {"email": "u1@x.io", "plan": "pro", "_timestamp": 1000}),
    ("PUT", "/api/v1/customers/u1", {"plan": "old", "_timestamp": 900}),
    (
        "POST",
        "/api/v1/events",
        {"name": "anon-view", "anonymous_id": "a1", "timestamp": 990, "type": "page"},
    ),
    ("PUT", "/api/v1/customers/u1", {"anonymous_id": "a1", "_timestamp": 1001}),
    (
        "POST",
        "/api/v1/customers/u1/events",
        {"name": "buy", "data": {"n": 1}, "id": ULID_A, "timestamp": 1002},
    ),
    (
        "POST",
        "/api/v1/customers/u1/events",
        {"name": "buy", "data": {"n": 1}, "id": ULID_A, "timestamp": 1002},
    ),
    ("POST", "/api/v1/customers/u1/events", {"name": "Home", "type": "screen", "timestamp": 1003}),
    (
        "PUT",
        "/api/v1/customers/u1/devices",
        {"device": {"id": "tok", "platform": "ios", "last_used": 1004}},
    ),
    ("PUT", "/api/v1/customers/u2", {"city": "Oslo", "_timestamp": 1005}),
    ("POST", "/api/v1/merge_customers", {"primary": {"id": "u1"}, "secondary": {"id": "u2"}}),
    ("PUT", "/api/v1/customers/u3", {"_timestamp": 1006}),
    ("POST", "/api/v1/customers/u3/suppress", None),
    ("PUT", "/api/v1/customers/u4", {"_timestamp": 1007}),
    ("DELETE", "/api/v1/customers/u4", None),
]

V2_WORKLOAD: list[dict[str, Any]] = [
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "identify",
        "timestamp": 1000,
        "attributes": {"email": "u1@x.io", "plan": "pro"},
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "identify",
        "timestamp": 900,
        "attributes": {"plan": "old"},
    },
    {
        "type": "person",
        "identifiers": {"anonymous_id": "a1"},
        "action": "page",
        "name": "anon-view",
        "timestamp": 990,
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "identify",
        "timestamp": 1001,
        "attributes": {"anonymous_id": "a1"},
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "event",
        "name": "buy",
        "attributes": {"n": 1},
        "id": ULID_A,
        "timestamp": 1002,
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "event",
        "name": "buy",
        "attributes": {"n": 1},
        "id": ULID_A,
        "timestamp": 1002,
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "screen",
        "name": "Home",
        "timestamp": 1003,
    },
    {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "add_device",
        "device": {"token": "tok", "platform": "ios", "last_used": 1004},
    },
    {
        "type": "person",
        "identifiers": {"id": "u2"},
        "action": "identify",
        "timestamp": 1005,
        "attributes": {"city": "Oslo"},
    },
    {"type": "person", "action": "merge", "primary": {"id": "u1"}, "secondary": {"id": "u2"}},
    {"type": "person", "identifiers": {"id": "u3"}, "action": "identify", "timestamp": 1006},
    {"type": "person", "identifiers": {"id": "u3"}, "action": "suppress"},
    {"type": "person", "identifiers": {"id": "u4"}, "action": "identify", "timestamp": 1007},
    {"type": "person", "identifiers": {"id": "u4"}, "action": "delete"},
]


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The read model without what legitimately differs per run: generated ids, receive times."""

    def person(p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": p["id"],
            "email": p["email"],
            "attributes": {k: v for k, v in p["attributes"].items() if k != "created_at"},
            "attribute_timestamps": {
                k: v for k, v in p["attribute_timestamps"].items() if k != "created_at"
            },
            "activity": [{k: v for k, v in a.items() if k != "received_at"} for a in p["activity"]],
            "devices": p["devices"],
            "anonymous_ids": p["anonymous_ids"],
        }

    return {
        "people": sorted((person(p) for p in snapshot["people"]), key=lambda p: p["id"]),
        "merges": len(snapshot["merges"]),
        "suppressed": [s for s in snapshot["suppressed"] if s[0] != "cio_id"],
        "anonymous": snapshot["anonymous"],
    }


def test_v1_and_v2_build_the_same_read_model(emu: CustomerIOEmulator, client: httpx.Client) -> None:
    for method, path, body in V1_WORKLOAD:
        r = client.request(method, path, json=body)
        assert r.status_code == 200, (path, r.text)
    via_v1 = comparable(emu.state.snapshot())
    emu.reset()
    assert client.post("/api/v2/batch", json={"batch": V2_WORKLOAD}).status_code == 200
    via_v2 = comparable(emu.state.snapshot())
    assert via_v1 == via_v2
    people = via_v1["people"]
    assert [p["id"] for p in people] == ["u1"]
    assert people[0]["attributes"] == {"email": "u1@x.io", "plan": "pro", "city": "Oslo"}
    assert [a["name"] for a in people[0]["activity"]] == ["anon-view", "buy", "Home"]


def test_processing_delay_applies_later(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    emu.configure(processing_delay=0.5)
    client.put("/api/v1/customers/late", json={})
    request = emu.requests.last
    assert request is not None and request.status == 200

    def applied() -> float:
        return time.time() if emu.state.person("late") is not None else 0.0

    # Looked for from the moment the call was answered: found only once the delay has passed.
    found_at = wait_until(applied, timeout=30, what="the delayed call")
    assert found_at - request.received_at >= 0.5


def test_control_state_and_requests(client: httpx.Client, emu: CustomerIOEmulator) -> None:
    client.put("/api/v1/customers/u1", json={"plan": "pro"})
    state = httpx.get(f"{emu.url}/_emulator/state").json()
    assert state["people"][0]["attributes"]["plan"] == "pro"
    recorded = httpx.get(f"{emu.url}/_emulator/requests").json()
    assert recorded["total"] == 1 and recorded["by_status"] == {"200": 1}
    record = recorded["requests"][0]
    assert record["method"] == "PUT" and record["path"] == "/api/v1/customers/u1"
    assert record["body"] == {"plan": "pro"} and record["status"] == 200
    assert record["headers"]["authorization"].startswith("Basic ")
    assert record["endpoint"] == "PUT /api/v1/customers/{identifier}"
    assert httpx.post(f"{emu.url}/_emulator/reset").status_code == 200
    assert emu.state.people == [] and emu.requests.total == 0
