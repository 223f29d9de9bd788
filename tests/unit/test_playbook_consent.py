"""Consent: the three shapes a message's consent comes in, and what a connection lets through."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.playbooks import Playbook, Shaped, read_consent

NOT_GRANTED = "consent: not granted: marketing"
NO_CONSENT = 'consent: the message carries no consent (consent_missing = "drop")'


def call(context: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": "Signed Up", "userId": "u-1"}
    if context is not None:
        message["context"] = context
    return message


def segment(**preferences: Any) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": preferences}}


def rudder(allowed: Any = (), denied: Any = ()) -> dict[str, Any]:
    return {"consentManagement": {"allowedConsentIds": list(allowed),
                                  "deniedConsentIds": list(denied), "provider": "custom",
                                  "resolutionStrategy": "or"}}  # fmt: skip


def opt_out(**categories: Any) -> dict[str, Any]:
    return {"consent": {"optOut": categories}}


def filtered(context: dict[str, Any] | None, needs: list[str], missing: str = "deliver") -> Any:
    shaped = Playbook.compile([], consent=needs, consent_missing=missing).apply(call(context))
    if shaped.filtered is None:
        assert shaped.messages == [call(context)]
    return shaped.filtered


@pytest.mark.parametrize(
    ("context", "outcome"),
    [
        # Segment: categoryPreferences, true grants
        (segment(marketing=True, analytics=False), None),
        (segment(marketing=False), NOT_GRANTED),
        (segment(marketing="yes"), NOT_GRANTED),  # only true grants
        (segment(analytics=True), NOT_GRANTED),  # not listed: not granted
        (segment(), NOT_GRANTED),  # an empty preferences object grants nothing
        (segment(Marketing=True), NOT_GRANTED),  # names are case-sensitive
        # RudderStack: consentManagement ids
        (rudder(allowed=["marketing"]), None),
        (rudder(allowed=["analytics"]), NOT_GRANTED),
        (rudder(allowed=["marketing"], denied=["marketing"]), NOT_GRANTED),  # denial wins
        (rudder(denied=["analytics"]), NOT_GRANTED),
        ({"consentManagement": {"allowedConsentIds": "marketing"}}, NOT_GRANTED),  # malformed
        # MetaRouter-style opt-out map: true means opted out
        (opt_out(marketing=True), NOT_GRANTED),
        (opt_out(marketing=False), None),
        (opt_out(analytics=True), None),  # not opted out of marketing
        (opt_out(), None),
        ({"consent": {"optOut": ["marketing"]}}, NOT_GRANTED),  # malformed: grants nothing
        # several shapes at once: granted by one, denied by none
        ({**segment(marketing=True), **rudder(denied=["marketing"])}, NOT_GRANTED),
        ({"consent": {"categoryPreferences": {"marketing": True}, "optOut": {"marketing": True}}},
         NOT_GRANTED),
        ({"consent": {"categoryPreferences": {}, "optOut": {}}}, None),
        ({**segment(analytics=True), **rudder(allowed=["marketing"])}, None),
    ],
)
def test_consent_shapes(context: dict[str, Any], outcome: str | None) -> None:
    assert filtered(context, ["marketing"]) == outcome


def test_every_needed_category_must_be_granted() -> None:
    needs = ["marketing", "analytics", "ads"]
    assert filtered(segment(marketing=True, analytics=True, ads=True), needs) is None
    assert filtered(segment(marketing=True), needs) == "consent: not granted: analytics, ads"


@pytest.mark.parametrize(
    "context",
    [None, {}, {"consent": {}}, {"consent": "yes"}, {"ip": "1.2.3.4"},
     {"consent": {"categoryPreferences": None}}],
)  # fmt: skip
def test_message_without_consent_follows_consent_missing(context: Any) -> None:
    assert filtered(context, ["marketing"], missing="deliver") is None
    assert filtered(context, ["marketing"], missing="drop") == NO_CONSENT


def test_context_that_is_not_an_object_carries_no_consent() -> None:
    message = {"type": "track", "userId": "u", "context": "text"}
    playbook = Playbook.compile([], consent=["marketing"], consent_missing="drop")
    assert playbook.apply(message).filtered == NO_CONSENT


def test_a_connection_that_needs_nothing_delivers_everything() -> None:
    playbook = Playbook.compile([], consent=[], consent_missing="drop")
    assert playbook.is_empty
    assert playbook.apply(call(segment(marketing=False))).filtered is None


def test_consent_is_decided_before_any_rule() -> None:
    playbook = Playbook.compile([{"set": {"properties.x": 1}}], consent=["marketing"])
    assert playbook.apply(call(segment(marketing=False))) == Shaped(
        messages=[], filtered=NOT_GRANTED
    )
    shaped = playbook.apply(call(segment(marketing=True)))
    assert shaped.rules_applied == ["rule 1"]
    assert shaped.messages[0]["properties"] == {"x": 1}


def test_read_consent() -> None:
    assert read_consent(call()) is None
    consent = read_consent(call({**segment(a=True, b=False), **rudder(["c"], ["d"]),
                                 "ip": "x"}))  # fmt: skip
    assert consent is not None
    assert [consent.grants(c) for c in "abcde"] == [True, False, True, False, False]
