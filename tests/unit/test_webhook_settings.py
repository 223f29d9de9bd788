"""Webhook settings: defaults, every refusal naming its field and never repeating a secret, the
`integrations` filter, and header values kept secret from the file to the store to the API."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgspec
import pytest

from turnout.config import ConfigError, load
from turnout.destinations import registry
from turnout.destinations.webhook.mapping import WebhookCall, map_message
from turnout.destinations.webhook.settings import WebhookSettings
from turnout.manage.connections import keep_stored_secrets
from turnout.spec.message import Message
from turnout.store.secrets import each_secret, mask

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def parse(**settings: Any) -> WebhookSettings:
    return msgspec.convert({"url": "https://hooks.example.com/in", **settings}, WebhookSettings)


def refusal(**settings: Any) -> str:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.convert(settings, WebhookSettings)
    return str(raised.value)


def test_defaults() -> None:
    settings = parse()
    assert (settings.headers, settings.signing_secret) == ({}, None)
    assert (settings.batch_size, settings.request_timeout) == (1, 10.0)
    assert parse(signing_secret=" ").signing_secret is None  # a form's empty secret


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "Object missing required field `url`"),
        (
            {"url": "hooks.example.com"},
            "url: must start with http:// or https:// and name a host, got 'hooks.example.com'",
        ),
        (
            {"url": "ftp://h/"},
            "url: must start with http:// or https:// and name a host, got 'ftp://h/'",
        ),
        ({"url": "https://h:port/"}, "url: not a valid address: 'https://h:port/'"),
        (
            {"url": "https://me:pw-SECRET@h/"},
            "url: must not contain a user or password; send"
            " credentials in headers (e.g. Authorization), which are kept secret",
        ),
        ({"url": "https://h/", "batch_size": 0}, "Expected `int` >= 1 - at `$.batch_size`"),
        ({"url": "https://h/", "batch_size": 101}, "Expected `int` <= 100 - at `$.batch_size`"),
        (
            {"url": "https://h/", "request_timeout": 0},
            "Expected `float` > 0.0 - at `$.request_timeout`",
        ),
        (
            {"url": "https://h/", "headers": {"X-Key": 5}},
            "Expected `str`, got `int` - at `$.headers[...]`",
        ),
        (
            {"url": "https://h/", "headers": {"Bad Name": "v"}},
            "headers: 'Bad Name' is not a valid header name",
        ),
        (
            {"url": "https://h/", "headers": {"Webhook-Signature": "v"}},
            "headers: 'Webhook-Signature' is set by Turnout and cannot be configured",
        ),
        (
            {"url": "https://h/", "headers": {"X-A": "1", "x-a": "2"}},
            "headers: 'x-a' is given twice (names ignore case)",
        ),
        (
            {"url": "https://h/", "headers": {"X-Key": "SECRET\r\nX-Evil: 1"}},
            "headers: the value of 'X-Key' must be printable ASCII (no line breaks)",
        ),
        (
            {"url": "https://h/", "signing_secret": "SECRET"},
            'signing_secret: must be "whsec_" followed by the base64 of 24 to 64 random bytes',
        ),
        (
            {"url": "https://h/", "signing_secret": "whsec_SECRET!"},
            "signing_secret: must be"
            ' "whsec_" followed by the base64 of 24 to 64 random bytes; the part after it is not'
            " base64",
        ),
        (
            {"url": "https://h/", "signing_secret": "whsec_U0VDUkVU"},
            "signing_secret: must be"
            ' "whsec_" followed by the base64 of 24 to 64 random bytes; it decodes to 6 bytes',
        ),
    ],
)
def test_refusals_name_the_field_and_never_repeat_a_secret(
    settings: dict[str, Any], message: str
) -> None:
    assert refusal(**settings) == message


def test_a_standard_secret_is_accepted_with_or_without_padding() -> None:
    assert parse(signing_secret=SECRET).signing_secret == SECRET
    unpadded = "whsec_" + base64.b64encode(b"k" * 25).decode().rstrip("=")
    assert parse(signing_secret=unpadded).signing_secret == unpadded


def test_repr_shows_no_secret() -> None:
    settings = parse(
        url="https://hooks.example.com/in?token=t0ken",
        headers={"Authorization": "Bearer s3cret"},
        signing_secret=SECRET,
    )
    assert repr(settings) == (
        "WebhookSettings(url='https://hooks.example.com/in', headers=['Authorization'],"
        " signing_secret=***, batch_size=1)"
    )


def message(**fields: Any) -> Message:
    return Message(
        type="identify",
        message_id="m-1",
        received_at="2026-11-28T10:00:00.000Z",
        timestamp="2026-11-28T10:00:00.000Z",
        user_id="u-1",
        **fields,
    )


@pytest.mark.parametrize(
    ("integrations", "filtered"),
    [
        ({}, None),
        ({"All": False, "Webhooks": True}, None),
        ({"All": False, "webhook": {"option": 1}}, None),
        ({"Customer.io": False}, None),
        ({"Webhooks": False}, 'integrations: webhooks disabled ("Webhooks": false)'),
        (
            {"All": False},
            'integrations: all destinations disabled ("All": false) and Webhooks not enabled',
        ),
    ],
)
def test_integrations_decide_whether_a_call_is_posted(
    integrations: dict[str, Any], filtered: str | None
) -> None:
    found = map_message(message(integrations=integrations), parse())
    assert found.filtered == filtered
    if filtered is None:
        assert found.operations == [WebhookCall("m-1", message(integrations=integrations))]


def test_header_values_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "turnout.toml"
    path.write_text(
        """
[[connections]]
name = "hook"
destination = "webhook"

[connections.settings]
url = "https://hooks.example.com/in"
signing_secret = "env:HOOK_SECRET"

[connections.settings.headers]
Authorization = "env:HOOK_TOKEN"
X-Team = "growth"
"""
    )
    config = load(path, environ={"HOOK_SECRET": SECRET, "HOOK_TOKEN": "Bearer t"})
    assert config.connections[0].settings == {
        "url": "https://hooks.example.com/in",
        "signing_secret": SECRET,
        "headers": {"Authorization": "Bearer t", "X-Team": "growth"},
    }
    with pytest.raises(ConfigError) as raised:
        load(path, environ={"HOOK_SECRET": SECRET})
    assert str(raised.value) == (
        "connections.hook.settings.headers.Authorization: environment variable HOOK_TOKEN is not"
        " set"
    )


def test_header_values_are_secret_and_their_names_are_not() -> None:
    webhook = registry.get("webhook")
    settings = {
        "url": "https://hooks.example.com/in",
        "headers": {"Authorization": "Bearer s3cret-token", "X-Empty": ""},
        "signing_secret": SECRET,
        "batch_size": 5,
    }
    sealed = each_secret(settings, webhook.secret_fields, lambda v: "sealed:" + v)
    assert sealed == {
        "url": "https://hooks.example.com/in",
        "headers": {"Authorization": "sealed:Bearer s3cret-token", "X-Empty": ""},
        "signing_secret": "sealed:" + SECRET,
        "batch_size": 5,
    }
    shown = each_secret(settings, webhook.secret_fields, mask)
    assert shown["headers"] == {"Authorization": "Be••••••••en", "X-Empty": ""}

    # Sent back masked (or empty), a header keeps its stored value; a new value replaces it.
    edited = {
        **settings,
        "headers": {"Authorization": "Be••••••••en", "X-New": "v"},
        "signing_secret": "",
    }
    assert keep_stored_secrets(webhook, edited, settings) == {
        **settings,
        "headers": {"Authorization": "Bearer s3cret-token", "X-New": "v"},
    }
