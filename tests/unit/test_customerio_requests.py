"""Operations packed into requests within Customer.io's 500 KB / 32 KB limits, order kept."""

from __future__ import annotations

import msgspec

from turnout.destinations.customerio import limits
from turnout.destinations.customerio.operations import (
    AnonymousEvent,
    IdentifyObject,
    IdentifyPerson,
    Operation,
    PersonEvent,
    PersonRef,
)
from turnout.destinations.customerio.requests import batch_body_size, build_requests


def identify(user: str, pad: int = 0) -> IdentifyPerson:
    return IdentifyPerson(person=PersonRef("id", user), attributes={"p": "x" * pad}, timestamp=1)


def event(user: str, pad: int = 0) -> PersonEvent:
    return PersonEvent(
        person=PersonRef("id", user),
        name="e",
        data={"p": "x" * pad},
        timestamp=1,
        id="01HWT2D74NS86Z5JATM52C3M7Z",
    )


def item_size(op: Operation) -> int:
    return len(msgspec.json.encode(op.v2_item()))


def test_v2_packs_operations_into_one_batch_request() -> None:
    ops = [identify(f"u{i}") for i in range(5)]
    (request,) = build_requests(ops, "v2", 100)
    assert (request.method, request.path, request.operations) == (
        "POST",
        "/api/v2/batch",
        [0, 1, 2, 3, 4],
    )
    assert request.body is not None
    body = msgspec.json.decode(request.body)
    assert body == {"batch": [op.v2_item() for op in ops]}


def test_v2_batch_size_caps_items_per_request() -> None:
    requests = build_requests([identify(f"u{i}") for i in range(250)], "v2", 100)
    assert [len(r.operations) for r in requests] == [100, 100, 50]


def test_v2_batch_body_stays_within_500kb() -> None:
    ops: list[Operation] = [identify(f"u{i}", pad=30_000) for i in range(40)]
    requests = build_requests(ops, "v2", 1000)
    assert len(requests) > 1
    for request in requests:
        assert request.body is not None and len(request.body) <= limits.V2_BATCH_MAX_BYTES
    assert [i for r in requests for i in r.operations] == list(range(40))


def test_v2_batch_exactly_at_limit_is_one_request_and_one_byte_more_splits() -> None:
    base = item_size(identify("u0"))
    # n items of equal size s fill the body exactly: batch_body_size([s] * n) == limit.
    n = 20
    target = limits.V2_BATCH_MAX_BYTES - batch_body_size([0] * n)
    size, rest = divmod(target, n)
    pads = [size - base + (1 if i < rest else 0) for i in range(n)]
    ops: list[Operation] = [identify("u0", pad=p) for p in pads]
    (request,) = build_requests(ops, "v2", 1000)
    assert request.body is not None and len(request.body) == limits.V2_BATCH_MAX_BYTES
    bigger: list[Operation] = [*ops[:-1], identify("u0", pad=pads[-1] + 1)]
    assert [len(r.operations) for r in build_requests(bigger, "v2", 1000)] == [n - 1, 1]


def test_v2_item_at_32kb_batches_and_over_goes_by_v1() -> None:
    pad = limits.V2_ITEM_MAX_BYTES - item_size(event("u1"))
    at_limit, over = event("u1", pad=pad), event("u1", pad=pad + 1)
    assert item_size(at_limit) == limits.V2_ITEM_MAX_BYTES
    (request,) = build_requests([at_limit], "v2", 100)
    assert request.kind == "v2_batch"
    (request,) = build_requests([over], "v2", 100)
    assert (request.kind, request.method, request.path) == (
        "v1",
        "POST",
        "/api/v1/customers/u1/events",
    )


def test_v1_only_operation_keeps_person_order_around_a_batch() -> None:
    big = event("u1", pad=limits.V2_ITEM_MAX_BYTES)
    requests = build_requests([identify("u1"), big, identify("u2")], "v2", 100)
    assert [(r.kind, r.operations) for r in requests] == [
        ("v2_batch", [0]),
        ("v1", [1]),
        ("v2_batch", [2]),
    ]


def test_anonymous_events_go_by_v1_without_breaking_other_peoples_batch() -> None:
    anon = AnonymousEvent(anonymous_id="a1", name="x", data={}, timestamp=1, id="0" * 26)
    requests = build_requests([identify("u1"), anon, identify("u2")], "v2", 100)
    assert [(r.kind, r.operations) for r in requests] == [("v1", [1]), ("v2_batch", [0, 2])]


def test_v1_sends_one_request_per_operation_with_encoded_paths() -> None:
    ops: list[Operation] = [identify("a/b"), event("x@y.com")]
    requests = build_requests(ops, "v1", 100)
    assert [(r.method, r.path) for r in requests] == [
        ("PUT", "/api/v1/customers/a%2Fb"),
        ("POST", "/api/v1/customers/x%40y.com/events"),
    ]


def test_v1_sends_objects_to_v2_entity() -> None:
    group = IdentifyObject(object_type_id="1", object_id="acme", attributes={})
    (request,) = build_requests([group], "v1", 100)
    assert (request.kind, request.path) == ("v2_entity", "/api/v2/entity")
    assert request.body is not None
    assert msgspec.json.decode(request.body) == group.v2_item()
