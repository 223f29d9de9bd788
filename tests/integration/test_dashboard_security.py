"""The dashboard's doors, checked over plain HTTP: sign-in required, session cookie flags, CSRF
on every state-changing request, no open redirect after sign-in, no session for anonymous
visitors, throttled wrong tokens, small URL-encoded bodies only, streams that end at sign-out."""

from __future__ import annotations

import re

import httpx

from support import ADMIN_TOKEN, TurnoutProcess, wait_until
from turnout.web.sessions import MAX_SESSIONS

TOKEN = ADMIN_TOKEN


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
    form_cookie = page.headers["set-cookie"].lower()
    assert form_cookie.startswith("turnout_sign_in=")
    assert "httponly" in form_cookie and "samesite=strict" in form_cookie
    assert "path=/dashboard" in form_cookie
    client.cookies.set("turnout_session", "planted-before-sign-in", path="/dashboard")
    signed = client.post("/dashboard/login", data={"token": TOKEN, "csrf_token": _csrf(page.text)})
    cookies = signed.headers.get_list("set-cookie")
    session = next(c.lower() for c in cookies if c.startswith("turnout_session="))
    assert "httponly" in session and "samesite=strict" in session and "path=/dashboard" in session
    assert not session.startswith("turnout_session=planted")
    assert any(c.startswith('turnout_sign_in=""') for c in cookies)  # the form's cookie is gone


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


def test_anonymous_visitors_cannot_push_an_admin_out(turnout: TurnoutProcess) -> None:
    """Loading the sign-in page stores nothing on the server: more loads than the session table
    holds leave a signed-in admin signed in."""
    admin, _ = signed_in(turnout)
    visitor = httpx.Client(base_url=turnout.url, timeout=10)
    for _ in range(MAX_SESSIONS + 1):
        visitor.cookies.clear()
        page = visitor.get("/dashboard/login")
        assert page.status_code == 200
    assert "turnout_session" not in page.headers["set-cookie"]
    assert admin.get("/dashboard/sources").status_code == 200


def test_sign_in_form_value_only_works_with_its_own_cookie(turnout: TurnoutProcess) -> None:
    """A page on another site can get a form value of its own, but not the browser's cookie."""
    attacker = httpx.Client(base_url=turnout.url, timeout=10)
    stolen = _csrf(attacker.get("/dashboard/login").text)
    victim = httpx.Client(base_url=turnout.url, timeout=10)
    victim.get("/dashboard/login")
    forged = victim.post("/dashboard/login", data={"token": TOKEN, "csrf_token": stolen})
    assert forged.status_code == 401 and "The sign-in form expired" in forged.text
    no_cookie = httpx.post(
        turnout.url + "/dashboard/login", data={"token": TOKEN, "csrf_token": stolen}, timeout=10
    )
    assert no_cookie.status_code == 401
    assert "turnout_session" not in forged.headers.get("set-cookie", "")


def _from(address: str) -> dict[str, str]:
    """Turnout takes the client address from X-Forwarded-For when a proxy on this machine sends
    it (uvicorn trusts 127.0.0.1 by default): one test client can be several addresses."""
    return {"X-Forwarded-For": address}


def test_wrong_tokens_are_throttled_per_address_and_logged(turnout: TurnoutProcess) -> None:
    guesser = httpx.Client(base_url=turnout.url, timeout=10, headers=_from("203.0.113.7"))
    csrf = _csrf(guesser.get("/dashboard/login").text)
    for attempt in range(10):
        wrong = guesser.post(
            "/dashboard/login", data={"token": f"guess-{attempt}", "csrf_token": csrf}
        )
        assert wrong.status_code == 401 and "That is not the admin token." in wrong.text
    blocked = guesser.post("/dashboard/login", data={"token": "guess-10", "csrf_token": csrf})
    assert blocked.status_code == 429
    assert 590 <= int(blocked.headers["retry-after"]) <= 600
    assert "Too many wrong tokens from your address. Try again in 10 minutes." in blocked.text
    # Not even the right token gets through from that address now...
    right = guesser.post("/dashboard/login", data={"token": TOKEN, "csrf_token": csrf})
    assert right.status_code == 429 and "turnout_session" not in right.headers.get("set-cookie", "")
    # ... nor through the API (the doors share the count) ...
    api = httpx.get(
        turnout.url + "/api/v1/sources",
        headers={"Authorization": f"Bearer {TOKEN}", **_from("203.0.113.7")},
        timeout=10,
    )
    assert api.status_code == 429 and api.json()["code"] == "too_many_attempts"
    # ... while an admin elsewhere signs in as usual.
    admin = httpx.Client(base_url=turnout.url, timeout=10, headers=_from("198.51.100.20"))
    page = admin.get("/dashboard/login")
    signed = admin.post("/dashboard/login", data={"token": TOKEN, "csrf_token": _csrf(page.text)})
    assert signed.status_code == 303 and admin.get("/dashboard/").status_code == 200

    log = wait_until(
        lambda: (text := turnout.output.read_text()).count("wrong admin token") == 10 and text,
        what="ten logged failures",
    )
    lines = [line for line in log.splitlines() if "wrong admin token" in line]
    assert all(
        line.endswith("WARNING turnout.web: dashboard sign-in: wrong admin token from 203.0.113.7")
        for line in lines
    ), lines
    assert "guess-" not in log


def test_only_small_url_encoded_bodies_reach_the_dashboard(turnout: TurnoutProcess) -> None:
    """Refused before any form is parsed (a multipart file would be spooled to disk first),
    signed in or not."""
    upload = {"token": ("token.txt", b"x" * 2_000_000, "text/plain")}
    for path in ("/dashboard/login", "/dashboard/logout"):
        response = httpx.post(turnout.url + path, files=upload, timeout=10)
        assert response.status_code == 415, (path, response.status_code)
        assert response.text.startswith("Content-Type multipart/form-data is not accepted here")
    oversize = httpx.post(
        turnout.url + "/dashboard/login", data={"token": "x" * 70_000}, timeout=10
    )
    assert oversize.status_code == 413
    assert oversize.text == "Request body over 65536 bytes: the limit for a dashboard form"

    client, csrf = signed_in(turnout)
    big = client.post("/dashboard/sources", data={"name": "x" * 70_000, "csrf_token": csrf})
    assert big.status_code == 413
    as_json = client.post(
        "/dashboard/sources", json={"name": "evil"}, headers={"X-CSRF-Token": csrf}
    )
    assert as_json.status_code == 415
    made = client.post("/dashboard/sources", data={"name": "fine", "csrf_token": csrf})
    assert made.status_code == 303


def test_debugger_stream_ends_when_its_session_signs_out(turnout: TurnoutProcess) -> None:
    client, csrf = signed_in(turnout)
    other_tab = httpx.Client(base_url=turnout.url, timeout=10, cookies=client.cookies)
    # Read timeout under the stream's 15 s keepalive: a stream left open fails the test.
    with client.stream(
        "GET", "/dashboard/debugger/stream?source=web", timeout=httpx.Timeout(10, read=8)
    ) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        assert other_tab.post("/dashboard/logout", data={"csrf_token": csrf}).status_code == 303
        list(lines)  # returns once the server closes the stream
    assert client.get("/dashboard/debugger/stream?source=web").status_code == 303


def test_replay_all_matching_keeps_the_filter_intact(turnout: TurnoutProcess) -> None:
    client, csrf = signed_in(turnout)
    response = client.post(
        "/dashboard/dead-letters/replay",
        data={"connection": "cio", "reason": "a&b=c #1 ü", "csrf_token": csrf},
    )
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == "/dashboard/dead-letters?connection=cio&reason=a%26b%3Dc+%231+%C3%BC"
    )


def test_api_docs_need_sign_in_and_load_nothing_from_other_sites(turnout: TurnoutProcess) -> None:
    moved = httpx.get(turnout.url + "/api/v1/docs", timeout=10)
    assert moved.status_code == 307 and moved.headers["location"] == "/dashboard/api-docs"
    for path in ("/dashboard/api-docs", "/dashboard/api-docs/openapi.json"):
        anonymous = httpx.get(turnout.url + path, timeout=10)
        assert anonymous.status_code == 303, path
        assert anonymous.headers["location"].startswith("/dashboard/login?next=")

    client, _ = signed_in(turnout)
    page = client.get("/dashboard/api-docs")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert scripts == [
        "/dashboard/static/htmx.min.js",
        "/dashboard/static/turnout.js",
        "/dashboard/api-docs/assets/swagger-ui-bundle.js",
        "/dashboard/static/api-docs.js",
    ]
    assert styles == ["/dashboard/static/turnout.css", "/dashboard/api-docs/assets/swagger-ui.css"]
    assert "script-src" not in page.headers["content-security-policy"]  # falls to 'self'
    for asset in scripts + styles:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/dashboard/api-docs/assets/index.html").status_code == 404
    spec = client.get("/dashboard/api-docs/openapi.json").json()
    assert spec["servers"] == [{"url": "/api/v1"}]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
