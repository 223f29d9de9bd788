"""The debugger stream's items: each kind formatted by its own rule, an odd item skipped and
logged (never the end of the stream), and a call shown once whether it comes from the record,
the tap or both."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from turnout.web.pages.debugger import Filters, _Follower

CALL = {
    "type": "page",
    "messageId": "m-1",
    "userId": "ada",
    "source": "web",
    "context": {"page": {"url": "https://x.test/pricing"}},
}


def _data(text: str | None) -> tuple[str, dict[str, Any]]:
    assert text is not None
    head, data = text.strip().split("\n")
    return head.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_each_kind_is_formatted_by_its_own_rule() -> None:
    follower = _Follower(Filters(), subscribed_at=100.0)
    assert _data(follower.render({"kind": "received", "message": CALL, "at": 5.0})) == (
        "received",
        {"message": CALL, "label": "https://x.test/pricing", "size": None, "at": 5.0},
    )
    delivery = {"kind": "delivery", "connection": "cio", "message_id": "m-1", "fate": "filtered"}
    shaped = {"playbook_revision": 3, "rules_applied": ['rule 1 "no tests"']}
    assert _data(follower.render({**delivery, "detail": "a rule", **shaped, "at": 6.0})) == (
        "delivery",
        {
            "connection": "cio",
            "message_id": "m-1",
            "fate": "filtered",
            "detail": "a rule",
            "attempts": None,
            "playbook_revision": 3,
            "rules_applied": ['rule 1 "no tests"'],
            "operations": [],
            "request": "",
            "response": "",
            "at": 6.0,
        },
    )
    # Without a playbook, or read back from the store: the rules are not known (None).
    assert _data(follower.render({**delivery, "at": 6.5}))[1]["rules_applied"] is None
    reject = {"kind": "rejected", "source": "web", "code": "missing_event", "at": 7.0}
    assert _data(follower.render({**reject, "message": "event: required", "payload": "{}"})) == (
        "rejected",
        {
            "source": "web",
            "code": "missing_event",
            "message": "event: required",
            "payload": "{}",
            "at": 7.0,
        },
    )


def test_an_item_that_cannot_be_shown_is_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    follower = _Follower(Filters(), subscribed_at=100.0)
    with caplog.at_level(logging.WARNING, logger="turnout.web.debugger"):
        assert follower.render({"kind": "received", "message": "not an object"}) is None
        assert follower.render({"kind": "rejected", "source": "web"}) is None  # no code
    assert [r.getMessage() for r in caplog.records] == [
        "debugger: skipped a 'rejected' item that cannot be shown"
    ]
    assert follower.render({"kind": "something new"}) is None
    assert follower.render({"kind": "received", "message": CALL}) is not None


def test_a_call_or_a_refused_call_in_the_record_and_the_tap_is_shown_once() -> None:
    follower = _Follower(Filters(), subscribed_at=100.0)
    assert follower.render({"kind": "received", "message": CALL, "at": 99.0}) is not None
    assert follower.render({"kind": "received", "message": CALL}) is None
    reject = {"kind": "rejected", "source": "web", "code": "c", "message": "m", "payload": "p"}
    # Recorded before the stream listened: the tap never had it, a later twin is new.
    assert follower.render({**reject, "recorded": True, "at": 99.0}) is not None
    assert follower.render({**reject, "recorded": True, "at": 101.0}) is not None
    assert follower.render(reject) is None  # the tap's copy of the one recorded at 101
    assert follower.render(reject) is not None  # a new refused call with the same content
