"""A connection's Playbook tab in Chromium: type a rule, see where it is wrong, fix it, try it on
the calls already received, save it, change it, roll it back; then what it drops never reaches
Customer.io."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support import ADMIN_TOKEN, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.browser

RULES = """consent = []
consent_missing = "deliver"

[[playbook]]
name = "no test events"
when = 'type = "track" and event = "Test Event"'
drop = true

[[playbook]]
when = {when}
rename_event = "{renamed}"
"""
VALID = RULES.format(when="'event = \"Order Completed\"'", renamed="purchase")


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.events("event")] if found else []


def _track(turnout: TurnoutProcess, person: str, event: str, message_id: str) -> None:
    body = {"userId": person, "event": event, "messageId": message_id}
    assert turnout.post("/v1/track", body).status_code == 200


def _fate(turnout: TurnoutProcess, message_id: str) -> dict[str, Any] | None:
    answer = turnout.api("GET", f"/messages/{message_id}")
    records = answer.json()["deliveries"] if answer.status_code == 200 else []
    return records[0] if records and records[0]["fate"] != "retrying" else None


def test_edit_try_save_and_roll_back_a_playbook(
    page: Any, turnout: TurnoutProcess, emulator: CustomerIOEmulator, tmp_path: Path
) -> None:
    identify = {"userId": "ada", "messageId": "m-1", "traits": {"email": "ada@example.com"}}
    assert turnout.post("/v1/identify", identify).status_code == 200
    _track(turnout, "ada", "Test Event", "m-2")
    _track(turnout, "ada", "Order Completed", "m-3")
    wait_until(
        lambda: _events(emulator, "ada") == ["Test Event", "Order Completed"],
        what="the calls sent before any playbook",
    )
    sent_before = len(emulator.requests)

    page.goto(turnout.url + "/dashboard/connections/cio")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button:has-text('Sign in')")
    page.click("a.button:has-text('Playbook')")
    expect(page.locator("h1")).to_have_text("Playbook")
    editor = page.locator("#playbook-text")
    expect(editor).to_have_value('consent = []\nconsent_missing = "deliver"\n')
    expect(page.locator("#in-force")).to_have_text("No playbook yet: every call goes as it is.")

    # Live validation: the located error while the rule is wrong, "valid" once it is fixed.
    editor.fill(RULES.format(when="'event = '", renamed="purchase"))
    expect(page.locator("#playbook-check")).to_have_text(
        "✗ playbook rule 2, when (line 1, column 9): unexpected end of condition; expected one"
        " of: a field path, a number, a string, false, null, true"
    )
    page.screenshot(path=str(tmp_path / "located-error.png"), full_page=True)
    editor.fill(VALID)
    expect(page.locator("#playbook-check")).to_have_text("✓ valid: 2 rules")

    # Try it on the calls received: what each would become, and nothing is sent.
    page.click("button:has-text('Try on recent calls')")
    expect(page.locator("#preview h2")).to_have_text("On the last 3 calls (nothing was sent)")
    expect(page.locator("#preview-summary")).to_have_text(
        "2 delivered, 1 filtered, 0 dead-lettered, 1 changed by the playbook"
    )
    expect(page.locator(".filtered-by li")).to_have_text(
        ['filtered 1: playbook rule 1 "no test events": drop']
    )
    tried = page.locator("details.tried")
    expect(tried.locator("summary")).to_have_text(
        [
            "m-1 · identify → delivered",
            'm-2 · track Test Event → filtered playbook rule 1 "no test events": drop',
            "m-3 · track Order Completed → delivered changed",
        ]
    )
    tried.nth(2).locator("summary").click()
    expect(tried.nth(2).locator(".operations")).to_contain_text('"name": "purchase"')
    page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)
    assert len(emulator.requests) == sent_before

    # Save: revision 1; a change: revision 2 with its diff.
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.ok")).to_have_text("Saved as revision 1: in force now.")
    rows = page.locator("table.revisions tbody tr")
    expect(rows.locator(".number")).to_have_text(["1 in force"])
    expect(rows.locator(".origin")).to_have_text(["dashboard"])
    expect(editor).to_have_value(VALID)
    editor.fill(VALID.replace('"purchase"', '"order_completed"'))
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.ok")).to_have_text("Saved as revision 2: in force now.")
    expect(rows.locator(".number")).to_have_text(["2 in force", "1"])
    expect(rows.first.locator("pre.diff")).to_have_text(
        "--- revision 1\n+++ this revision\n@@ -5,4 +5,4 @@\n \n [[playbook]]\n"
        ' when = \'event = "Order Completed"\'\n-rename_event = "purchase"\n'
        '+rename_event = "order_completed"\n'
    )
    page.screenshot(path=str(tmp_path / "revisions.png"), full_page=True)

    # An invalid playbook is refused with its place; the running revision stays.
    editor.fill(RULES.format(when="'event = '", renamed="x"))
    page.click("button:has-text('Save')")
    expect(page.locator("#save-error")).to_have_text(
        "playbook rule 2, when (line 1, column 9): unexpected end of condition; expected one"
        " of: a field path, a number, a string, false, null, true"
    )
    expect(page.locator("#in-force")).to_contain_text("Revision 2 in force")

    # Roll back to revision 1: a new revision 3 restores it.
    page.locator("tr[data-revision='1'] button").click()
    expect(page.locator(".flash.ok")).to_have_text("Rolled back: revision 3 (revision 1) in force.")
    expect(rows.locator(".number")).to_have_text(["3 in force", "2", "1"])
    expect(rows.first.locator(".note")).to_have_text("rollback to revision 1")
    expect(editor).to_have_value(VALID)
    page.screenshot(path=str(tmp_path / "rolled-back.png"), full_page=True)

    # What the playbook in force drops never reaches Customer.io; the rest is reshaped.
    _track(turnout, "bo", "Test Event", "m-drop")
    _track(turnout, "bo", "Order Completed", "m-keep")
    wait_until(lambda: _events(emulator, "bo") == ["purchase"], what="the renamed call")
    dropped = wait_until(lambda: _fate(turnout, "m-drop"), what="the dropped call's fate")
    assert (dropped["fate"], dropped["detail"], dropped["playbook_revision"]) == (
        "filtered",
        'playbook rule 1 "no test events": drop',
        3,
    )
    assert _events(emulator, "bo") == ["purchase"]

    # The live debugger shows, per connection, the revision and the rules that touched a call.
    page.goto(turnout.url + "/dashboard/debugger")
    expect(page.locator("#live")).to_have_text("Live")
    kept = page.locator("details.msg[data-id='m-keep']")  # from the store: the revision only
    kept.locator("summary").click()
    expect(kept.locator(".delivery .rules-applied")).to_have_text("Playbook revision 3")
    _track(turnout, "cy", "Order Completed", "m-live")
    row = page.locator("details.msg[data-id='m-live']")
    expect(row.locator("summary .fates")).to_have_text("cio: delivered")
    row.locator("summary").click()
    expect(row.locator(".delivery .rules-applied")).to_have_text("Playbook revision 3: rule 2")
    page.screenshot(path=str(tmp_path / "debugger-rules.png"), full_page=True)
