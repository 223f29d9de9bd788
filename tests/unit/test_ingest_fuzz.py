"""Whatever a client sends, the tracking API answers precisely and keeps the good messages.

Properties checked for arbitrary input: never a 5xx, every error has `code` and `message`, every
committed message decodes as a `Message`, and a valid message sent alongside bad ones is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_harness import Harness, tracking

from turnout.spec.message import CALL_TYPES

ROUTES = ["/identify", "/track", "/page", "/screen", "/group", "/alias", "/t", "/i", "/batch", "/b"]
FIELDS = [
    "type", "userId", "anonymousId", "messageId", "event", "name", "category", "groupId",
    "previousId", "traits", "properties", "context", "integrations", "timestamp",
    "originalTimestamp", "sentAt", "writeKey", "receivedAt",
]  # fmt: skip
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
calls = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.sampled_from(["track", "u-1", "2026-01-01T00:00:00Z"])
        for name in FIELDS
    },
)
GOOD = {"type": "track", "userId": "u-good", "event": "Good"}


@pytest.fixture(scope="module")
def shared() -> Iterator[Harness]:
    with tracking() as harness:
        yield harness


@pytest.fixture
def api(shared: Harness) -> Harness:
    return shared


def fresh(api: Harness) -> Harness:
    """One app serves every example (starting one each time is slow); each starts empty."""
    api.log.entries.clear()
    api.rejects.clear()
    return api


def check_answer(api: Harness, response: Any) -> None:
    assert response.status_code in (200, 400, 401, 413, 415), response.text
    answer = response.json()
    if response.status_code != 200:
        assert answer["success"] is False and answer["code"] and answer["message"]
    for message in api.log.messages:  # committed messages must decode for delivery
        assert message.type in CALL_TYPES
        assert message.user_id or message.anonymous_id


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_precise_answer(api: Harness, route: str, body: bytes) -> None:
    check_answer(fresh(api), api.post(route, content=body))


@FUZZ
@given(route=st.sampled_from(ROUTES), body=json_values)
def test_arbitrary_json_gets_a_precise_answer(api: Harness, route: str, body: Any) -> None:
    check_answer(fresh(api), api.post(route, content=json.dumps(body).encode()))


@FUZZ
@given(route=st.sampled_from(ROUTES[:-2]), call=calls)
def test_any_field_of_any_type_on_a_single_route(
    api: Harness, route: str, call: dict[str, Any]
) -> None:
    check_answer(fresh(api), api.post(route, call))


@FUZZ
@given(items=st.lists(calls, min_size=1, max_size=4), position=st.integers(0, 4))
def test_a_valid_message_survives_any_neighbours_in_its_batch(
    api: Harness, items: list[dict[str, Any]], position: int
) -> None:
    batch = list(items)
    batch.insert(min(position, len(batch)), GOOD)
    response = fresh(api).post("/batch", {"batch": batch})
    check_answer(api, response)
    assert response.status_code == 200
    assert "Good" in [m.event for m in api.log.messages if m.user_id == "u-good"]
    answer = response.json()
    assert answer.get("accepted", 1) == len(api.log.entries)
    assert len(answer.get("rejected", [])) == len(batch) - len(api.log.entries)
