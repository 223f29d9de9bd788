"""Status classification cases the emulator does not produce: one place, one reason each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from turnout.destinations.base import Status
from turnout.destinations.customerio.responses import classify, error_text
from turnout.destinations.http import retry_after


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after("12") == 12
    assert retry_after("1.5") == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = retry_after(later)
    assert delay is not None and 25 <= delay <= 31
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after("soon") is None and retry_after(None) is None


def test_redirect_pauses_the_connection_naming_the_region() -> None:
    (result,) = classify(301, {"location": "https://track-eu.customer.io/x"}, b"", 1, batch=False)
    assert result.status is Status.AUTH and "region" in result.reason


def test_forbidden_is_auth() -> None:
    assert classify(403, {}, b"", 1, batch=False)[0].status is Status.AUTH


def test_other_client_errors_are_permanent_with_the_response() -> None:
    (result,) = classify(400, {}, b'{"meta":{"errors":["bad value"]}}', 1, batch=False)
    assert result.status is Status.PERMANENT and "bad value" in result.reason


def test_no_such_endpoint_pauses_the_connection_instead_of_dead_lettering() -> None:
    (result,) = classify(404, {}, b'{"meta":{"error":"not here"}}', 1, batch=False)
    assert result.status is Status.AUTH and "track_url" in result.reason


def test_request_timeout_408_is_retry() -> None:
    assert classify(408, {}, b"", 1, batch=False)[0].status is Status.RETRY


def test_batch_200_with_errors_fails_named_items() -> None:
    body = b'{"errors":[{"batch_index":1,"reason":"invalid","field":"name","message":"bad"}]}'
    results = classify(200, {}, body, 2, batch=True)
    assert [r.status for r in results] == [Status.OK, Status.PERMANENT]
    assert results[1].reason.endswith("invalid name: bad")


def test_unreadable_207_retries_the_whole_batch() -> None:
    results = classify(207, {}, b"<html>", 2, batch=True)
    assert [r.status for r in results] == [Status.RETRY, Status.RETRY]


def test_error_text_reads_both_envelopes() -> None:
    assert error_text(b'{"meta":{"errors":["a","b"]}}') == "a; b"
    assert error_text(b'{"errors":[{"reason":"required","field":"name","message":"m"}]}') == (
        "required name: m"
    )
    assert error_text(b"plain") == "plain"
