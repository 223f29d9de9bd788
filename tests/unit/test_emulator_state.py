"""The read model's asynchronous semantics (ref §12.6-8), applied without HTTP."""

from __future__ import annotations

from typing import Literal

import pytest

from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, Ident
from turnout.emulators.customerio import operations as ops

ID = Ident("id", "u1")


@pytest.fixture
def emu() -> CustomerIOEmulator:
    return CustomerIOEmulator(EmulatorConfig())


def identify(who: Ident = ID, ts: float | None = None, **attrs: object) -> ops.Identify:
    return ops.Identify(who=who, attributes=dict(attrs), timestamp=ts)


def test_older_update_never_overwrites_newer_value(emu: CustomerIOEmulator) -> None:
    emu.apply(identify(ts=200, plan="pro"), 1000)
    emu.apply(identify(ts=100, plan="free", color="red"), 1001)
    person = emu.state.person("u1")
    assert person is not None
    assert person.attributes["plan"] == "pro"
    assert person.attributes["color"] == "red"  # not set before: the older update still applies


def test_null_removes_and_tombstone_blocks_older_value(emu: CustomerIOEmulator) -> None:
    emu.apply(identify(ts=100, plan="pro"), 1000)
    emu.apply(identify(ts=300, plan=None), 1001)
    emu.apply(identify(ts=200, plan="free"), 1002)
    person = emu.state.person("u1")
    assert person is not None and "plan" not in person.attributes


def test_update_only_identify_of_unknown_person_does_nothing(emu: CustomerIOEmulator) -> None:
    emu.apply(ops.Identify(who=ID, attributes={"a": 1}, update_only=True))
    assert emu.state.person("u1") is None
    assert emu.state.dropped[-1].reason == "update_only_unknown"


def test_unknown_cio_id_is_dropped(emu: CustomerIOEmulator) -> None:
    emu.apply(identify(who=Ident("cio_id", "ffffffff"), a=1))
    emu.apply(ops.Track(type="event", name="x", data={}, who=Ident("cio_id", "ffffffff")))
    assert emu.state.people == []


@pytest.mark.parametrize("mode", ["create", "drop"])
def test_event_for_unknown_person_follows_config(mode: Literal["create", "drop"]) -> None:
    emu = CustomerIOEmulator(EmulatorConfig(unknown_person_events=mode))
    emu.apply(ops.Track(type="event", name="x", data={}, who=ID))
    assert (emu.state.person("u1") is not None) == (mode == "create")


def test_body_email_finds_the_person_and_gives_them_the_path_id(emu: CustomerIOEmulator) -> None:
    emu.apply(identify(who=Ident("email", "a@b.co")))
    emu.apply(identify(who=Ident("id", "u1"), email="A@B.co"))
    people = emu.state.people
    assert len(people) == 1 and people[0].id == "u1"


def test_merge_moves_missing_attributes_and_activity_then_deletes_secondary(
    emu: CustomerIOEmulator,
) -> None:
    emu.apply(identify(who=Ident("id", "p"), plan="pro"))
    emu.apply(identify(who=Ident("id", "s"), plan="free", color="blue"))
    emu.apply(ops.Track(type="event", name="e", data={}, who=Ident("id", "s")))
    emu.apply(ops.Merge(Ident("id", "p"), Ident("id", "s")))
    primary = emu.state.person("p")
    assert primary is not None
    assert primary.attributes["plan"] == "pro" and primary.attributes["color"] == "blue"
    assert [a.name for a in primary.activity] == ["e"]
    assert emu.state.person("s") is None
    assert emu.state.merges[0].primary == primary.cio_id


def test_merge_with_missing_primary_is_a_noop(emu: CustomerIOEmulator) -> None:
    emu.apply(identify(who=Ident("id", "s")))
    emu.apply(ops.Merge(Ident("id", "nobody"), Ident("id", "s")))
    assert emu.state.person("s") is not None and emu.state.merges == []


def test_suppress_deletes_and_blocks_every_identifier_until_unsuppressed(
    emu: CustomerIOEmulator,
) -> None:
    emu.apply(identify(email="a@b.co"))
    emu.apply(ops.Suppress(ID))
    emu.apply(identify(who=Ident("email", "a@b.co")))
    emu.apply(ops.Track(type="event", name="x", data={}, who=ID))
    assert emu.state.people == []
    assert ("email", "a@b.co") in emu.state.suppressed
    emu.apply(ops.Unsuppress(ID))
    emu.apply(identify())
    person = emu.state.person("u1")
    assert person is not None and person.activity == type(person.activity)()  # fresh, no history


def test_subscription_preferences_dot_notation(emu: CustomerIOEmulator) -> None:
    topics = "cio_subscription_preferences.topics"
    emu.apply(ops.Identify(who=ID, attributes={f"{topics}.topic_1": True}))
    emu.apply(ops.Identify(who=ID, attributes={f"{topics}.topic_2": False}))
    person = emu.state.person("u1")
    assert person is not None
    assert person.attributes["cio_subscription_preferences"] == {
        "topics": {"topic_1": True, "topic_2": False}
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("TRUE", True),
        (1, True),
        ("1", True),
        (False, False),
        ("yes", False),
    ],
)
def test_unsubscribed_reading(emu: CustomerIOEmulator, value: object, expected: bool) -> None:
    emu.apply(identify(unsubscribed=value))
    person = emu.state.person("u1")
    assert person is not None and person.unsubscribed is expected


def test_dedupe_window_forgets_old_ids() -> None:
    emu = CustomerIOEmulator(EmulatorConfig(dedupe_window=10))
    event = ops.Track(
        type="event", name="x", data={}, who=ID, dedupe_id="01BX5ZZKBKACTAV9WEVGEMMVRY"
    )
    emu.apply(event, 1000)
    emu.apply(event, 1005)  # duplicate within the window
    emu.apply(ops.Track(type="event", name="y", data={}, who=ID), 1020)
    emu.apply(event, 1021)  # remembered no longer
    person = emu.state.person("u1")
    assert person is not None and [a.name for a in person.activity] == ["x", "y", "x"]
    assert emu.state.counters["duplicates"] == 1


def test_activity_limit_keeps_newest() -> None:
    emu = CustomerIOEmulator(EmulatorConfig(activity_limit=2))
    for name in "abc":
        emu.apply(ops.Track(type="event", name=name, data={}, who=ID))
    person = emu.state.person("u1")
    assert person is not None and [a.name for a in person.activity] == ["b", "c"]


def test_explicit_created_at_wins_over_the_default_even_with_an_old_timestamp(
    emu: CustomerIOEmulator,
) -> None:
    emu.apply(identify(ts=1000, created_at=1361205308), 1_700_000_000)
    person = emu.state.person("u1")
    assert person is not None and person.attributes["created_at"] == 1361205308
    emu.apply(identify(who=Ident("id", "u2")), 1_700_000_000)
    fresh = emu.state.person("u2")
    assert fresh is not None and fresh.attributes["created_at"] == 1_700_000_000
