"""The dashboard's doors, checked over plain HTTP: sign-in required, session cookie flags, CSRF
on every state-changing request, no open redirect after sign-in."""

from __future__ import annotations

import re

import httpx

from support import TurnoutProcess

TOKEN = "admin-test-token"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def signed_in(turnout: TurnoutProcess) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"token": TOKEN, "csrf_token": _csrf(page.text), "next": "/dashboard/sources"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/sources"
    return client, _csrf(client.get("/dashboard/sources").text)


def test_pages_need_sign_in(turnout: TurnoutProcess) -> None:
    for path in ("/dashboard/", "/dashboard/connections/cio", "/dashboard/debugger/stream"):
        response = httpx.get(turnout.url + path, timeout=10)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?next=")


def test_session_cookie_is_httponly_strict_and_renewed_on_sign_in(turnout: TurnoutProcess) -> None:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    before = client.cookies["turnout_session"]
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    client.post("/dashboard/login", data={"token": TOKEN, "csrf_token": _csrf(page.text)})
    assert client.cookies["turnout_session"] != before


def test_secure_flag_when_reached_over_https(turnout: TurnoutProcess) -> None:
    page = httpx.get(
        turnout.url + "/dashboard/login", headers={"X-Forwarded-Proto": "https"}, timeout=10
    )
    assert "secure" in page.headers["set-cookie"].lower()


def test_wrong_token_and_forged_forms_are_refused(turnout: TurnoutProcess) -> None:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    wrong = client.post("/dashboard/login", data={"token": "nope", "csrf_token": _csrf(page.text)})
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    forged = client.post("/dashboard/login", data={"token": TOKEN, "csrf_token": "forged"})
    assert forged.status_code == 401

    client, csrf = signed_in(turnout)
    assert client.post("/dashboard/sources", data={"name": "evil"}).status_code == 403
    assert (
        client.post("/dashboard/sources", data={"name": "evil", "csrf_token": "x"}).status_code
        == 403
    )
    assert client.post("/dashboard/connections/cio/pause", data={}).status_code == 403
    assert turnout.api("GET", "/connections/cio").json()["enabled"] is True
    made = client.post("/dashboard/sources", data={"name": "good", "csrf_token": csrf})
    assert made.status_code == 303
    htmx = client.post(
        "/dashboard/connections/cio/test", headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
    )
    assert htmx.status_code == 200 and "credentials accepted" in htmx.text


def test_sign_in_never_redirects_off_the_dashboard(turnout: TurnoutProcess) -> None:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    page = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"token": TOKEN, "csrf_token": _csrf(page.text), "next": "//evil.example/"},
    )
    assert response.headers["location"] == "/dashboard/"


def test_sign_out_ends_the_session(turnout: TurnoutProcess) -> None:
    client, csrf = signed_in(turnout)
    client.post("/dashboard/logout", data={"csrf_token": csrf})
    assert client.get("/dashboard/").status_code == 303


def test_pages_forbid_framing_and_inline_script(turnout: TurnoutProcess) -> None:
    client, _ = signed_in(turnout)
    page = client.get("/dashboard/connections/cio")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src" not in page.headers["content-security-policy"]  # falls to 'self'
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "key-456" not in page.text
