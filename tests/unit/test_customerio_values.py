"""Timestamps, sizes and dedupe ids as Customer.io needs them."""

from __future__ import annotations

import hashlib
import re

import pytest

from turnout.destinations.customerio.dedupe import encode_ulid, ulid_for
from turnout.destinations.customerio.values import (
    convert_iso_strings,
    cut_utf8,
    iso_to_unix,
    to_unix_seconds,
)

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def test_dedupe_id_is_a_valid_ulid() -> None:
    assert ULID.match(ulid_for("6d1c6b3e-0b8e-4bd4-9c4a-2a0f0b1c2d3e", "2024-05-01T12:34:56.789Z"))


def test_dedupe_id_is_deterministic_per_message_id() -> None:
    a = ulid_for("m-1", "2024-05-01T12:34:56.789Z")
    assert a == ulid_for("m-1", "2024-05-01T12:34:56.789Z")
    assert a != ulid_for("m-2", "2024-05-01T12:34:56.789Z")


def test_dedupe_id_time_part_is_the_message_timestamp() -> None:
    ulid = ulid_for("m-1", "2024-05-01T12:34:56.789Z")
    assert ulid[:10] == encode_ulid(1714566896789 << 80)[:10]


def test_dedupe_id_without_a_client_time_has_a_zero_time_part() -> None:
    random = int.from_bytes(hashlib.sha256(b"m-1").digest()[:10], "big")
    assert ulid_for("m-1", None) == encode_ulid(random)
    assert ulid_for("m-1", None) == ulid_for("m-1", "1970-01-01T00:00:00Z")


def test_dedupe_id_orders_by_message_time() -> None:
    assert ulid_for("z", "2024-05-01T00:00:00.000Z") < ulid_for("a", "2024-05-02T00:00:00.000Z")


def test_encode_ulid_extremes() -> None:
    assert encode_ulid(0) == "0" * 26
    assert encode_ulid((1 << 128) - 1) == "7" + "Z" * 25


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-05-01T12:34:56.789Z", 1714566896),
        ("2019-02-01", 1548979200),
        ("2007-01-02T18:04:07", 1167761047),
        ("2006-01-02T18:04:07+01:00", 1136221447),
        ("2006-01-02T15:04:05-0800", 1136243045),
        ("2006-01-02T15:04:05.123456789Z", 1136214245),
        # A fraction followed by an offset: the offset counts (peer case sg-006).
        ("2006-01-02T15:04:05.007+01:00", 1136210645),
        ("2006-01-02T15:04:05.07-0800", 1136243045),
        ("2006-01-02T15:04:05.123456789-08:00", 1136243045),
    ],
)
def test_iso_8601_strings_become_unix_seconds(text: str, seconds: int) -> None:
    assert iso_to_unix(text) == seconds


@pytest.mark.parametrize(
    "text", ["25 Mar 2015", "01/01/2019", "2018-03-04T12:08:56 PDT", "20240501", "1714566896"]
)
def test_other_strings_are_not_dates(text: str) -> None:
    assert iso_to_unix(text) is None
    assert convert_iso_strings({"v": text}) == {"v": text}


def test_numeric_timestamps_seconds_stay_milliseconds_convert() -> None:
    assert to_unix_seconds(1714566896) == 1714566896
    assert to_unix_seconds(1714566896789) == 1714566896
    assert to_unix_seconds("1714566896") == 1714566896
    assert to_unix_seconds(True) is None
    assert to_unix_seconds("") is None


def test_cut_utf8_never_splits_a_character() -> None:
    assert cut_utf8("aé", 2) == "a"
    assert cut_utf8("日本語", 7) == "日本"
    assert cut_utf8("short", 100) == "short"
