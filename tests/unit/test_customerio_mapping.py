"""The Customer.io mapping's promises, one rule per test (see customerio-mapping.md)."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.destinations.base import MapResult
from turnout.destinations.customerio.mapping import map_message
from turnout.destinations.customerio.operations import (
    AddDevice,
    AnonymousEvent,
    DeleteDevice,
    DeleteObject,
    DeletePerson,
    DeleteRelationship,
    IdentifyObject,
    IdentifyPerson,
    MergePeople,
    PersonEvent,
    SuppressPerson,
    UnsuppressPerson,
)
from turnout.destinations.customerio.requests import build_requests
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.spec.message import Message

TS = "2024-05-01T12:34:56.789Z"
TS_SECONDS = 1714566896


def msg(type: str = "track", **fields: Any) -> Message:
    base: dict[str, Any] = {
        "type": type,
        "message_id": "msg-1",
        "received_at": TS,
        "timestamp": TS,
    }
    base.update(fields)
    return Message(**base)


def mapped(message: Message, **settings: Any) -> MapResult:
    return map_message(message, CustomerIOSettings(site_id="S", api_key="K", **settings))


def only(result: MapResult, kind: type) -> Any:
    found = [op for op in result.operations if isinstance(op, kind)]
    assert len(found) == 1, result
    return found[0]


# -- identify ---------------------------------------------------------------------------------


def test_identify_updates_person_with_traits_and_call_timestamp() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"email": "a@b.com", "plan": "pro"}))
    op = only(result, IdentifyPerson)
    assert op.v2_item() == {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "identify",
        "attributes": {"email": "a@b.com", "plan": "pro"},
        "timestamp": TS_SECONDS,
    }
    v1 = op.v1_request()
    assert (v1.method, v1.path) == ("PUT", "/api/v1/customers/u1")
    assert v1.body == {"email": "a@b.com", "plan": "pro", "_timestamp": TS_SECONDS}
    assert result.adjustments == []


def test_identify_uses_context_traits_when_traits_absent() -> None:
    result = mapped(msg("identify", user_id="u1", context={"traits": {"name": "Ada"}}))
    assert only(result, IdentifyPerson).attributes == {"name": "Ada"}


def test_identify_created_at_iso_becomes_unix_seconds() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"createdAt": TS}))
    assert only(result, IdentifyPerson).attributes == {"created_at": TS_SECONDS}


def test_identify_numeric_created_at_in_seconds_stays_seconds() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"created_at": 1361205308}))
    assert only(result, IdentifyPerson).attributes == {"created_at": 1361205308}


def test_identify_numeric_created_at_in_milliseconds_becomes_seconds() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"createdAt": 1361205308123}))
    assert only(result, IdentifyPerson).attributes == {"created_at": 1361205308}


def test_identify_created_at_converted_even_when_timestamp_conversion_off() -> None:
    result = mapped(
        msg("identify", user_id="u1", traits={"createdAt": TS, "seen": TS}),
        convert_timestamps=False,
    )
    assert only(result, IdentifyPerson).attributes == {"seen": TS, "created_at": TS_SECONDS}


def test_identify_unreadable_created_at_is_reported_not_sent() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"createdAt": "yesterday"}))
    assert only(result, IdentifyPerson).attributes == {}
    assert any("createdAt" in note for note in result.adjustments)


def test_identify_unsubscribed_passes_through() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"unsubscribed": True}))
    assert only(result, IdentifyPerson).attributes == {"unsubscribed": True}


def test_identify_with_anonymous_id_sends_it_as_attribute() -> None:
    result = mapped(msg("identify", user_id="u1", anonymous_id="anon-1", traits={"a": 1}))
    assert only(result, IdentifyPerson).attributes == {"a": 1, "anonymous_id": "anon-1"}


def test_identify_with_anonymous_id_equal_to_user_id_does_not_record_it() -> None:
    """Such an anonymousId names no separate visitor, so there is nothing to merge."""
    result = mapped(msg("identify", user_id="u1", anonymous_id="u1", traits={"a": 1}))
    assert only(result, IdentifyPerson).attributes == {"a": 1}


def test_identify_without_user_id_addresses_person_by_email() -> None:
    result = mapped(msg("identify", anonymous_id="anon-1", traits={"email": "ada@example.com"}))
    op = only(result, IdentifyPerson)
    assert op.v2_item()["identifiers"] == {"email": "ada@example.com"}
    assert op.v1_request().path == "/api/v1/customers/ada%40example.com"
    assert op.attributes["anonymous_id"] == "anon-1"


def test_identify_without_user_id_or_email_is_filtered_with_reason() -> None:
    result = mapped(msg("identify", anonymous_id="anon-1", traits={"name": "Ada"}))
    assert result.operations == []
    assert result.filtered and "anonymous" in result.filtered


def test_identify_with_45_traits_is_sent_as_consecutive_updates_within_limit() -> None:
    traits = {f"trait_{i:02}": i for i in range(45)}
    result = mapped(msg("identify", user_id="u1", traits=traits))
    ops = result.operations
    assert [len(op.attributes) for op in ops] == [30, 15]
    assert all(isinstance(op, IdentifyPerson) and op.person.value == "u1" for op in ops)
    assert all(op.timestamp == TS_SECONDS for op in ops)
    merged: dict[str, Any] = {}
    for op in ops:
        merged.update(op.attributes)
    assert merged == traits


def test_identify_traits_split_respects_configured_maximum() -> None:
    traits = {f"t{i}": i for i in range(10)}
    result = mapped(msg("identify", user_id="u1", traits=traits), max_traits_per_identify=4)
    assert [len(op.attributes) for op in result.operations] == [4, 4, 2]


def test_identify_large_traits_split_so_each_v2_item_fits_32kb() -> None:
    traits = {f"t{i}": "x" * 999 for i in range(40)}  # ~40 KB: one update by count alone
    result = mapped(msg("identify", user_id="u1", traits=traits), max_traits_per_identify=300)
    assert len(result.operations) == 2
    assert sum(len(op.attributes) for op in result.operations) == 40
    requests = build_requests(result.operations, "v2", 100)
    assert all(len(part) <= 32_000 for request in requests for part in request.parts)


def test_identify_value_over_1000_bytes_is_cut_and_reported() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"bio": "é" * 1500}))
    bio = only(result, IdentifyPerson).attributes["bio"]
    assert len(bio.encode()) <= 1000 and bio == "é" * 500
    assert any("bio" in note and "1000" in note for note in result.adjustments)


def test_identify_nested_value_over_1000_bytes_is_rejected_naming_the_limit() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"blob": {"k": "v" * 1200}}))
    assert result.operations == []
    assert result.rejected and "attribute value limit" in result.rejected


def test_identify_attribute_name_over_150_bytes_is_rejected() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"n" * 151: 1}))
    assert result.rejected and "attribute name limit" in result.rejected


def test_identify_nulls_pass_through_to_remove_attributes() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"phone": None}))
    assert only(result, IdentifyPerson).attributes == {"phone": None}


def test_identify_nested_objects_and_arrays_kept_with_dates_converted() -> None:
    traits = {"address": {"city": "Paris", "since": "2019-02-01"}, "tags": ["a", TS]}
    result = mapped(msg("identify", user_id="u1", traits=traits))
    assert only(result, IdentifyPerson).attributes == {
        "address": {"city": "Paris", "since": 1548979200},
        "tags": ["a", TS_SECONDS],
    }


def test_identify_trait_id_differing_from_user_id_is_not_sent() -> None:
    result = mapped(msg("identify", user_id="u1", traits={"id": "other", "a": 1}))
    assert only(result, IdentifyPerson).attributes == {"a": 1}
    assert any("'id'" in note for note in result.adjustments)


# -- identifiers ------------------------------------------------------------------------------


def test_user_id_with_slashes_round_trips_url_encoded() -> None:
    result = mapped(msg(user_id="user/with/slashes", event="Signed Up"))
    op = only(result, PersonEvent)
    assert op.v2_item()["identifiers"] == {"id": "user/with/slashes"}
    assert op.v1_request().path == "/api/v1/customers/user%2Fwith%2Fslashes/events"


def test_email_shaped_user_id_is_addressed_as_email_unchanged() -> None:
    result = mapped(msg("identify", user_id="Ada@Example.com", traits={}))
    op = only(result, IdentifyPerson)
    assert op.v2_item()["identifiers"] == {"email": "Ada@Example.com"}
    assert op.v1_request().path == "/api/v1/customers/Ada%40Example.com"


def test_cio_user_id_is_addressed_as_cio_id() -> None:
    result = mapped(msg("identify", user_id="cio_03000001", traits={"email": "new@x.com"}))
    op = only(result, IdentifyPerson)
    assert op.v2_item()["identifiers"] == {"cio_id": "03000001"}
    assert op.v1_request().path == "/api/v1/customers/cio_03000001"


def test_user_id_over_150_bytes_is_rejected() -> None:
    result = mapped(msg(user_id="u" * 151, event="x"))
    assert result.operations == []
    assert result.rejected and "id limit (150 bytes)" in result.rejected


# -- track ------------------------------------------------------------------------------------


def test_track_sends_event_with_properties_timestamp_and_dedupe_id() -> None:
    result = mapped(msg(user_id="u1", event="Order Completed", properties={"total": 9.5}))
    op = only(result, PersonEvent)
    item = op.v2_item()
    assert item["name"] == "Order Completed" and item["action"] == "event"
    assert item["attributes"] == {"total": 9.5}
    assert item["timestamp"] == TS_SECONDS
    assert len(item["id"]) == 26


def test_track_same_message_id_gives_same_dedupe_id() -> None:
    first = only(mapped(msg(user_id="u1", event="x", message_id="abc")), PersonEvent)
    again = only(mapped(msg(user_id="u1", event="x", message_id="abc")), PersonEvent)
    other = only(mapped(msg(user_id="u1", event="x", message_id="abd")), PersonEvent)
    assert first.id == again.id != other.id


def test_track_sdk_resend_with_shifted_corrected_time_keeps_dedupe_id() -> None:
    device_time = "2024-05-01T12:34:50.000Z"
    first = msg(user_id="u1", event="x", original_timestamp=device_time)
    resent = msg(
        user_id="u1",
        event="x",
        original_timestamp=device_time,
        timestamp="2024-05-01T12:34:57.012Z",
    )
    assert only(mapped(first), PersonEvent).id == only(mapped(resent), PersonEvent).id


def test_a_call_sent_without_any_time_keeps_its_dedupe_id_when_sent_again_later() -> None:
    """Without a client time, `timestamp` is each attempt's `receivedAt`: it must not matter."""
    first = msg(user_id="u1", event="x", timestamp=TS, received_at=TS)
    later = "2024-05-01T12:34:57.789Z"
    again = msg(user_id="u1", event="x", timestamp=later, received_at=later)
    first_id = only(mapped(first), PersonEvent).id
    assert first_id == only(mapped(again), PersonEvent).id
    assert first_id[:10] == "0" * 10  # no client time: the ULID's time part is zero


def test_track_anonymous_call_is_anonymous_event() -> None:
    result = mapped(msg(anonymous_id="anon-1", event="Viewed", properties={"a": 1}))
    op = only(result, AnonymousEvent)
    assert op.v1_request().path == "/api/v1/events"
    assert op.v1_request().body["anonymous_id"] == "anon-1"
    assert op.v2_item() is None


def test_identified_call_with_anonymous_id_records_it_on_the_person_first() -> None:
    result = mapped(msg(user_id="u1", anonymous_id="anon-1", event="Viewed"))
    link, event = result.operations
    assert isinstance(link, IdentifyPerson) and link.attributes == {"anonymous_id": "anon-1"}
    assert isinstance(event, PersonEvent)


@pytest.mark.parametrize(
    ("type", "fields"),
    [
        ("track", {"event": "Viewed"}),
        ("page", {"name": "Home"}),
        ("screen", {"name": "Home"}),
        ("group", {"group_id": "acme"}),
    ],
)
def test_anonymous_id_equal_to_user_id_sends_no_anonymous_id_update(
    type: str, fields: dict[str, Any]
) -> None:
    result = mapped(msg(type, user_id="u1", anonymous_id="u1", **fields))
    assert [op.__class__ for op in result.operations] == [
        IdentifyObject if type == "group" else PersonEvent
    ]


def test_track_properties_iso_dates_become_unix_seconds() -> None:
    result = mapped(msg(user_id="u1", event="x", properties={"at": TS, "label": "25 Mar 2015"}))
    assert only(result, PersonEvent).data == {"at": TS_SECONDS, "label": "25 Mar 2015"}


def test_track_iso_dates_kept_when_conversion_off() -> None:
    result = mapped(msg(user_id="u1", event="x", properties={"at": TS}), convert_timestamps=False)
    assert only(result, PersonEvent).data == {"at": TS}


def test_track_event_name_over_100_bytes_is_cut_and_reported() -> None:
    result = mapped(msg(user_id="u1", event="ü" * 80))
    assert only(result, PersonEvent).name == "ü" * 50
    assert any("event name" in note for note in result.adjustments)


def test_track_event_data_over_100000_bytes_is_rejected() -> None:
    result = mapped(msg(user_id="u1", event="x", properties={"big": "x" * 100_001}))
    assert result.rejected and "event data limit" in result.rejected


def test_track_without_event_name_is_rejected() -> None:
    assert mapped(msg(user_id="u1")).rejected


# -- page and screen --------------------------------------------------------------------------


def test_page_named_by_name_when_given() -> None:
    result = mapped(msg("page", user_id="u1", name="Pricing", properties={"url": "https://x/p"}))
    op = only(result, PersonEvent)
    assert (op.kind, op.name, op.data["url"]) == ("page", "Pricing", "https://x/p")


def test_page_named_by_properties_name_when_name_missing() -> None:
    result = mapped(msg("page", user_id="u1", properties={"name": "Home"}))
    assert only(result, PersonEvent).name == "Home"


def test_page_named_by_url_when_name_missing() -> None:
    result = mapped(msg("page", user_id="u1", properties={"url": "https://x.com/a"}))
    op = only(result, PersonEvent)
    assert op.name == "https://x.com/a" and op.data == {"url": "https://x.com/a"}


def test_page_named_by_context_url_and_url_kept_in_data() -> None:
    page = {"url": "https://x.com/ctx", "path": "/ctx"}
    result = mapped(msg("page", user_id="u1", context={"page": page}, properties={}))
    op = only(result, PersonEvent)
    assert op.name == "https://x.com/ctx" and op.data["url"] == "https://x.com/ctx"


def test_page_named_by_path_when_no_name_or_url() -> None:
    result = mapped(msg("page", user_id="u1", properties={"path": "/docs"}))
    assert only(result, PersonEvent).name == "/docs"


def test_page_named_by_context_path_when_nothing_else_names_it() -> None:
    result = mapped(msg("page", user_id="u1", context={"page": {"path": "/ctx"}}))
    op = only(result, PersonEvent)
    assert (op.name, op.data) == ("/ctx", {})


def test_page_without_name_url_or_path_is_named_page_view() -> None:
    result = mapped(msg("page", user_id="u1", properties={"title": "Welcome"}))
    op = only(result, PersonEvent)
    assert (op.kind, op.name, op.data) == ("page", "Page View", {"title": "Welcome"})


def test_page_with_only_blank_or_non_text_names_is_named_page_view() -> None:
    properties = {"name": " ", "url": 42, "path": ""}
    context = {"page": {"url": "", "path": "  "}}
    result = mapped(msg("page", user_id="u1", name="", properties=properties, context=context))
    op = only(result, PersonEvent)
    assert (op.name, op.data) == ("Page View", properties)


def test_anonymous_page_without_name_or_url_is_an_anonymous_page_view() -> None:
    body = only(mapped(msg("page", anonymous_id="anon-1")), AnonymousEvent).v1_request().body
    assert (body["type"], body["name"], body["data"]) == ("page", "Page View", {})


def test_page_with_300_character_url_is_cut_and_full_url_kept_in_data() -> None:
    url = "https://example.com/" + "a" * 280
    result = mapped(msg("page", anonymous_id="anon-1", properties={"url": url}))
    op = only(result, AnonymousEvent)
    assert op.name == url[:100]
    assert op.data["url"] == url
    assert any("data.url" in note for note in result.adjustments)


def test_anonymous_page_is_anonymous_page_event() -> None:
    result = mapped(msg("page", anonymous_id="anon-1", name="Home"))
    body = only(result, AnonymousEvent).v1_request().body
    assert (body["type"], body["name"], body["anonymous_id"]) == ("page", "Home", "anon-1")


def test_screen_is_screen_event_named_by_name() -> None:
    result = mapped(msg("screen", user_id="u1", name="Dashboard", properties={"from": "push"}))
    item = only(result, PersonEvent).v2_item()
    assert (item["action"], item["name"], item["attributes"]) == (
        "screen",
        "Dashboard",
        {"from": "push"},
    )


def test_screen_named_by_properties_name_when_name_missing() -> None:
    result = mapped(msg("screen", user_id="u1", properties={"name": "Settings"}))
    assert only(result, PersonEvent).name == "Settings"


def test_screen_without_a_name_is_named_screen_view() -> None:
    result = mapped(msg("screen", user_id="u1", name=" ", properties={"tab": "billing"}))
    op = only(result, PersonEvent)
    assert (op.kind, op.name, op.data) == ("screen", "Screen View", {"tab": "billing"})


# -- group and alias --------------------------------------------------------------------------


def test_group_identifies_object_and_relates_person() -> None:
    result = mapped(msg("group", user_id="u1", group_id="acme", traits={"name": "Acme"}))
    item = only(result, IdentifyObject).v2_item()
    assert item == {
        "type": "object",
        "identifiers": {"object_type_id": "1", "object_id": "acme"},
        "action": "identify",
        "attributes": {"name": "Acme"},
        "cio_relationships": [{"identifiers": {"id": "u1"}}],
    }


def test_group_uses_connection_object_type() -> None:
    result = mapped(msg("group", user_id="u1", group_id="acme"), object_type_id="7")
    assert only(result, IdentifyObject).object_type_id == "7"


def test_group_relationship_attributes_go_on_the_relationship() -> None:
    traits = {"name": "Acme", "relationshipAttributes": {"role": "admin"}}
    result = mapped(msg("group", user_id="u1", group_id="acme", traits=traits))
    item = only(result, IdentifyObject).v2_item()
    assert item["attributes"] == {"name": "Acme"}
    assert item["cio_relationships"][0]["relationship_attributes"] == {"role": "admin"}


def test_anonymous_group_updates_object_without_relationship() -> None:
    result = mapped(msg("group", anonymous_id="anon-1", group_id="acme", traits={"n": 1}))
    assert only(result, IdentifyObject).relationships == ()


def test_alias_merges_previous_id_into_user_id() -> None:
    result = mapped(msg("alias", user_id="new-id", previous_id="old-id"))
    op = only(result, MergePeople)
    assert op.v2_item() == {
        "type": "person",
        "action": "merge",
        "primary": {"id": "new-id"},
        "secondary": {"id": "old-id"},
    }
    assert op.v1_request().path == "/api/v1/merge_customers"


def test_alias_classifies_email_and_cio_identifiers() -> None:
    op = only(mapped(msg("alias", user_id="cio_a1", previous_id="x@y.com")), MergePeople)
    assert op.v1_request().body == {"primary": {"cio_id": "a1"}, "secondary": {"email": "x@y.com"}}


# -- reserved events --------------------------------------------------------------------------

IOS = {
    "device": {"token": "tok-1", "model": "iPhone15,2"},
    "os": {"name": "iOS", "version": "17.1"},
}


def test_device_created_or_updated_adds_device_only() -> None:
    result = mapped(msg(user_id="u1", event="Device Created or Updated", context=IOS))
    (op,) = result.operations
    assert isinstance(op, AddDevice)
    assert op.v2_item()["device"] == {
        "token": "tok-1",
        "platform": "ios",
        "last_used": TS_SECONDS,
        "attributes": {"device_os": "17.1", "device_model": "iPhone15,2"},
    }
    v1_body = op.v1_request().body
    assert v1_body is not None
    assert v1_body["device"]["id"] == "tok-1"


@pytest.mark.parametrize("event", ["Application Installed", "Application Opened"])
def test_app_lifecycle_with_token_adds_device_and_sends_event(event: str) -> None:
    context = {"device": {"token": "tok-1", "type": "Android"}}
    result = mapped(msg(user_id="u1", event=event, context=context))
    device, tracked = result.operations
    assert isinstance(device, AddDevice) and device.platform == "android"
    assert isinstance(tracked, PersonEvent) and tracked.name == event


def test_app_opened_without_token_is_ordinary_event() -> None:
    result = mapped(msg(user_id="u1", event="Application Opened"))
    assert [type(op) for op in result.operations] == [PersonEvent]


def test_device_deleted_deletes_device() -> None:
    result = mapped(msg(user_id="u1", event="Device Deleted", context=IOS))
    (op,) = result.operations
    assert isinstance(op, DeleteDevice)
    assert op.v1_request().path == "/api/v1/customers/u1/devices/tok-1"


def test_application_uninstalled_deletes_device_and_sends_event() -> None:
    result = mapped(msg(user_id="u1", event="Application Uninstalled", context=IOS))
    assert [type(op) for op in result.operations] == [DeleteDevice, PersonEvent]


def test_device_event_without_user_id_is_filtered() -> None:
    result = mapped(msg(anonymous_id="a", event="Device Created or Updated", context=IOS))
    assert result.filtered and "userId" in result.filtered


def test_device_with_unknown_platform_is_rejected() -> None:
    context = {"device": {"token": "tok-1"}, "os": {"name": "Windows"}}
    result = mapped(msg(user_id="u1", event="Device Created or Updated", context=context))
    assert result.rejected and "platform" in result.rejected


def test_user_deleted_deletes_person() -> None:
    (op,) = mapped(msg(user_id="u1", event="User Deleted")).operations
    assert isinstance(op, DeletePerson)
    assert (op.v1_request().method, op.v1_request().path) == ("DELETE", "/api/v1/customers/u1")


def test_user_suppressed_and_unsuppressed() -> None:
    (suppress,) = mapped(msg(user_id="u1", event="User Suppressed")).operations
    (unsuppress,) = mapped(msg(user_id="u1", event="User Unsuppressed")).operations
    assert isinstance(suppress, SuppressPerson) and suppress.v2_item()["action"] == "suppress"
    assert isinstance(unsuppress, UnsuppressPerson)
    assert unsuppress.v1_request().path == "/api/v1/customers/u1/unsuppress"


def test_object_deleted_deletes_named_object() -> None:
    props = {"objectId": "acme", "objectTypeId": "2"}
    (op,) = mapped(msg(user_id="u1", event="Object Deleted", properties=props)).operations
    assert isinstance(op, DeleteObject)
    assert op.v2_item() == {
        "type": "object",
        "identifiers": {"object_type_id": "2", "object_id": "acme"},
        "action": "delete",
    }


def test_relationship_deleted_unrelates_person_and_object() -> None:
    props = {"objectId": "acme"}
    (op,) = mapped(msg(user_id="u1", event="Relationship Deleted", properties=props)).operations
    assert isinstance(op, DeleteRelationship)
    assert op.v2_item()["cio_relationships"] == [{"identifiers": {"id": "u1"}}]
    assert op.object_type_id == "1"


def test_object_deleted_without_object_id_is_rejected() -> None:
    assert mapped(msg(user_id="u1", event="Object Deleted")).rejected


# -- integrations -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Customer.io", "Customer.io Data Pipelines", "customerio"])
def test_integrations_disabling_customerio_filters_the_call(key: str) -> None:
    result = mapped(msg(user_id="u1", event="x", integrations={key: False}))
    assert result.operations == [] and result.filtered


def test_integrations_all_false_filters_the_call() -> None:
    result = mapped(msg(user_id="u1", event="x", integrations={"All": False}))
    assert result.filtered and "All" in result.filtered


def test_integrations_all_false_but_customerio_enabled_delivers() -> None:
    integrations = {"All": False, "Customer.io": True}
    result = mapped(msg(user_id="u1", event="x", integrations=integrations))
    assert result.filtered is None and result.operations


def test_integrations_options_object_enables_customerio() -> None:
    integrations = {"All": False, "Customer.io": {"some": "option"}}
    assert mapped(msg(user_id="u1", event="x", integrations=integrations)).operations


# -- region -----------------------------------------------------------------------------------


def test_eu_region_sends_to_eu_host() -> None:
    settings = CustomerIOSettings(site_id="S", api_key="K", region="eu")
    assert settings.base_url == "https://track-eu.customer.io"


def test_stray_context_values_do_not_break_mapping() -> None:
    context = {"page": "not-an-object", "device": ["x"], "os": None}
    result = mapped(msg("page", user_id="u1", name="Home", context=context))
    assert only(result, PersonEvent).name == "Home"
