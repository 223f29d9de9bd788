"""The parts behind the dashboard's sign-in: the session table's bound, the stateless sign-in
form, and the per-address count of wrong admin tokens."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.requests import Request

from turnout.web.sessions import Sessions
from turnout.web.sign_in_form import COOKIE, SignInForms
from turnout.web.token_check import TokenCheck

TOKEN = "t" * 40


def request(address: str = "192.0.2.1", cookie: str = "", authorization: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (address, 1)}
    )


def test_the_session_table_drops_its_oldest_signed_in_session_when_full() -> None:
    sessions = Sessions(max_sessions=3)
    first, second, third = sessions.sign_in(), sessions.sign_in(), sessions.sign_in()
    fourth = sessions.sign_in()
    assert len(sessions) == 3
    assert sessions.get(first.id) is None and first.ended.is_set()
    assert [sessions.get(s.id) for s in (second, third, fourth)] == [second, third, fourth]
    assert not any(s.ended.is_set() for s in (second, third, fourth))


def test_signing_out_ends_the_session() -> None:
    sessions = Sessions()
    session = sessions.sign_in()
    sessions.drop(session)
    assert sessions.get(session.id) is None and session.ended.is_set()


def test_a_sign_in_form_is_valid_only_with_the_cookie_it_was_issued_for() -> None:
    forms = SignInForms(b"k" * 32)
    nonce, signed = forms.issue(request())
    assert len(nonce) == 32
    assert forms.valid(request(cookie=nonce), signed)
    assert forms.issue(request(cookie=nonce))[0] == nonce  # a second tab keeps the cookie
    other, _ = forms.issue(request())
    assert not forms.valid(request(cookie=other), signed)
    assert not forms.valid(request(), signed)
    assert not forms.valid(request(cookie=nonce), signed[:-1] + "A")
    assert not SignInForms(b"o" * 32).valid(request(cookie=nonce), signed)  # another process


def test_an_expired_sign_in_form_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    forms = SignInForms(b"k" * 32)
    nonce, signed = forms.issue(request())
    later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: later)
    assert not forms.valid(request(cookie=nonce), signed)


def test_wrong_tokens_are_counted_per_address(caplog: pytest.LogCaptureFixture) -> None:
    check = TokenCheck(lambda: TOKEN, limit=2, window_s=60)
    caplog.set_level(logging.WARNING, "turnout.web")
    guesser = request("198.51.100.1")
    assert check.retry_after(guesser) == 0
    assert not check.matches(guesser, "guess-1", "test door")
    assert check.retry_after(guesser) == 0
    assert not check.matches(guesser, "", "test door")
    assert 59 <= check.retry_after(guesser) <= 60
    assert check.retry_after(request("198.51.100.2")) == 0
    assert check.matches(request("198.51.100.2"), TOKEN, "test door")
    assert caplog.messages == ["test door: wrong admin token from 198.51.100.1"] * 2


def test_bearer_refusals_name_the_problem() -> None:
    check = TokenCheck(lambda: TOKEN, limit=1, window_s=30)
    assert check.bearer(request(authorization=f"Bearer {TOKEN}"), "api") is None
    missing = check.bearer(request(authorization=f"Basic {TOKEN}"), "api")
    assert missing is not None and (missing.status, missing.headers) == (
        401,
        {"WWW-Authenticate": "Bearer"},
    )
    wrong = check.bearer(request(authorization="Bearer nope"), "api")
    assert wrong is not None and wrong.status == 401
    throttled = check.bearer(request(authorization=f"Bearer {TOKEN}"), "api")
    assert throttled is not None and throttled.status == 429 and throttled.headers is not None
    assert 29 <= int(throttled.headers["Retry-After"]) <= 30
    assert throttled.body() == {
        "code": "too_many_attempts",
        "message": "too many wrong admin tokens from this address; try again in"
        f" {throttled.headers['Retry-After']} s",
    }
