"""Connection settings: documented defaults, and errors that name the field."""

from __future__ import annotations

import msgspec
import pytest

from turnout.destinations import registry
from turnout.destinations.customerio import CustomerIO, CustomerIOSettings
from turnout.destinations.customerio.settings import parse_settings


def test_defaults_are_documented_values() -> None:
    s = parse_settings({"site_id": "S", "api_key": "K"})
    assert (s.region, s.track_url, s.max_traits_per_identify, s.convert_timestamps) == (
        "us",
        None,
        30,
        True,
    )
    assert (s.object_type_id, s.api, s.batch_size, s.request_timeout) == ("1", "v2", 100, 10.0)
    assert s.base_url == "https://track.customer.io"


def test_eu_region_uses_eu_track_host_and_accepts_upper_case() -> None:
    assert parse_settings({"site_id": "S", "api_key": "K", "region": "EU"}).base_url == (
        "https://track-eu.customer.io"
    )


def test_track_url_overrides_region() -> None:
    s = parse_settings({"site_id": "S", "api_key": "K", "track_url": "http://127.0.0.1:9/"})
    assert s.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"api_key": "K"}, "site_id"),
        ({"site_id": "", "api_key": "K"}, "site_id"),
        ({"site_id": "S", "api_key": "K", "region": "asia"}, "region"),
        ({"site_id": "S", "api_key": "K", "batch_size": 0}, "batch_size"),
        (
            {"site_id": "S", "api_key": "K", "max_traits_per_identify": 301},
            "max_traits_per_identify",
        ),
        ({"site_id": "S", "api_key": "K", "api": "v3"}, "api"),
        ({"site_id": "S", "api_key": "K", "track_url": "ftp://x"}, "track_url"),
        ({"site_id": "S", "api_key": "K", "request_timeout": 0}, "request_timeout"),
        ({"site_id": "S", "api_key": "K", "siteid": "x"}, "siteid"),
    ],
)
def test_invalid_settings_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=field):
        parse_settings(raw)


def test_api_key_never_appears_in_repr() -> None:
    assert "sekrit" not in repr(CustomerIOSettings(site_id="S", api_key="sekrit"))


def test_registry_finds_customerio() -> None:
    destination = registry.get("customerio")
    assert isinstance(destination, CustomerIO)
    assert registry.names() == ["customerio", "webhook"]
    assert destination.title == "Customer.io"
    assert destination.secret_fields == frozenset({"api_key"})
    assert destination.default_rate_limit == 100.0
    assert destination.settings_type is CustomerIOSettings


def test_registry_unknown_name_lists_known_ones() -> None:
    with pytest.raises(registry.UnknownDestination, match="customerio"):
        registry.get("mailchimp")
