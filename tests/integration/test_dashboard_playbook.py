"""The dashboard's Playbook tab over plain HTTP: every POST needs the session's CSRF token, a
`function` rule is refused (the dashboard never runs code), and what a playbook holds is shown
escaped."""

from __future__ import annotations

import re

import httpx

from support import ADMIN_TOKEN, TurnoutProcess

TAB = "/dashboard/connections/cio/playbook"
FUNCTION = '[[playbook]]\nfunction = "functions/orders.py:split_order"\n'
REFUSED = (
    "playbook rule 1, function: functions may only be named in the configuration file&#39;s"
    " playbooks"
)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _signed_in(turnout: TurnoutProcess) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=turnout.url, timeout=10)
    form = client.get("/dashboard/login")
    signed = client.post(
        "/dashboard/login", data={"token": ADMIN_TOKEN, "csrf_token": _csrf(form.text)}
    )
    assert signed.status_code == 303
    return client, _csrf(client.get(TAB).text)


def _revision(turnout: TurnoutProcess) -> int | None:
    revision: int | None = turnout.api("GET", "/connections/cio/playbook").json()["revision"]
    return revision


def test_every_post_of_the_tab_needs_the_csrf_token(turnout: TurnoutProcess) -> None:
    client, csrf = _signed_in(turnout)
    drop = "[[playbook]]\ndrop = true\n"
    for path in (TAB, TAB + "/check", TAB + "/preview", TAB + "/revisions/1/rollback"):
        missing = client.post(path, data={"playbook": drop})
        forged = client.post(path, data={"playbook": drop, "csrf_token": "forged"})
        assert (path, missing.status_code, forged.status_code) == (path, 403, 403)
    assert _revision(turnout) is None

    saved = client.post(TAB, data={"playbook": drop, "csrf_token": csrf})
    assert (saved.status_code, saved.headers["location"]) == (303, TAB)
    assert _revision(turnout) == 1
    revisions = turnout.api("GET", "/connections/cio/playbook/revisions").json()
    assert [(r["number"], r["origin"]) for r in revisions] == [(1, "dashboard")]


def test_a_function_rule_is_refused_and_the_running_revision_stays(
    turnout: TurnoutProcess,
) -> None:
    client, csrf = _signed_in(turnout)
    first = "[[playbook]]\nwhen = 'event = \"A\"'\ndrop = true\n"
    assert client.post(TAB, data={"playbook": first, "csrf_token": csrf}).status_code == 303

    saved = client.post(TAB, data={"playbook": FUNCTION, "csrf_token": csrf})
    assert saved.status_code == 400
    assert f'<div class="flash error" role="alert" id="save-error">{REFUSED}</div>' in saved.text
    assert "split_order" in saved.text  # the typed text is kept in the editor
    assert _revision(turnout) == 1

    checked = client.post(TAB + "/check", data={"playbook": FUNCTION, "csrf_token": csrf})
    tried = client.post(TAB + "/preview", data={"playbook": FUNCTION, "csrf_token": csrf})
    for answer in (checked, tried):
        assert answer.status_code == 200
        assert f"<strong>✗ {REFUSED}</strong>" in answer.text
    assert _revision(turnout) == 1


def test_what_a_playbook_holds_is_shown_escaped(turnout: TurnoutProcess) -> None:
    client, csrf = _signed_in(turnout)
    text = '[[playbook]]\nname = "<script>alert(1)</script>"\nset = { "traits.x" = "<b>" }\n'
    assert client.post(TAB, data={"playbook": text, "csrf_token": csrf}).status_code == 303
    page = client.get(TAB).text
    assert "<script>alert" not in page and "<b>" not in page
    assert "name = &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in page
