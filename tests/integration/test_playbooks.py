"""Playbooks in a running Turnout: from the configuration file, through the lane, to the emulator.

What reaches Customer.io is what the connection's playbook made of each call; what it filtered
never arrives and its fate names the rule; a function's exception dead-letters one message while
the next flows; revisions saved through the API are in force at once and can be rolled back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import API_KEY, TurnoutProcess, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator

PLAYBOOK = """
[[connections.playbook]]
name = "no test events"
when = 'type = "track" and event = "Test Event"'
drop = true

[[connections.playbook]]
when = 'type = "identify"'
remove = ["traits.ssn"]
transform = { "traits.email" = ["trim", "lower", "sha256"] }

[[connections.playbook]]
when = 'event = "Order Completed"'
rename_event = "purchase"
"""

FUNCTIONS = """
def split_order(message):
    products = message.get("properties", {}).get("products") or []
    extra = [
        {**message, "messageId": f"{message['messageId']}-{index}", "event": "purchased_product",
         "properties": {"sku": product["sku"]}}
        for index, product in enumerate(products)
    ]
    return [message, *extra]


def explode(message):
    if message["properties"].get("boom"):
        raise RuntimeError("no stock for " + message["properties"]["sku"])
    return message
"""


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.events("event")] if found else []


def _trace(turnout: TurnoutProcess, message_id: str) -> dict[str, Any] | None:
    answer = turnout.api("GET", f"/messages/{message_id}")
    if answer.status_code != 200:
        return None
    records = answer.json()["deliveries"]
    return records[0] if records and records[0]["fate"] != "retrying" else None


def _track(turnout: TurnoutProcess, person: str, event: str, message_id: str, **extra: Any) -> None:
    body = {"userId": person, "event": event, "messageId": message_id, **extra}
    assert turnout.post("/v1/track", body).status_code == 200


def _config(tmp_path: Path, emulator: CustomerIOEmulator, connection: str) -> Path:
    return write_config(tmp_path, started_url(emulator), connection=connection)


def test_a_file_playbook_drops_hashes_and_renames(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    with TurnoutProcess(_config(tmp_path, emulator, PLAYBOOK)) as turnout:
        _track(turnout, "u1", "Test Event", "m-test")
        identify = {
            "userId": "u1",
            "messageId": "m-identify",
            "traits": {"email": "  Ada@Example.COM ", "ssn": "123-45-6789", "plan": "pro"},
        }
        assert turnout.post("/v1/identify", identify).status_code == 200
        _track(turnout, "u1", "Order Completed", "m-order", properties={"total": 30})

        wait_until(lambda: _events(emulator, "u1") == ["purchase"], what="the renamed event")
        person = emulator.state.person("u1")
        assert person is not None
        digest = hashlib.sha256(b"ada@example.com").hexdigest()
        assert {k: v for k, v in person.attributes.items() if k != "created_at"} == {
            "email": digest,
            "plan": "pro",
        }
        filtered = wait_until(lambda: _trace(turnout, "m-test"), what="the test event's fate")
        assert (filtered["fate"], filtered["detail"], filtered["playbook_revision"]) == (
            "filtered",
            'playbook rule 1 "no test events": drop',
            1,
        )
        order = wait_until(lambda: _trace(turnout, "m-order"), what="the order's fate")
        assert (order["fate"], order["playbook_revision"]) == ("delivered", 1)

        revisions = turnout.api("GET", "/connections/cio/playbook/revisions").json()
        assert [(r["number"], r["origin"], r["rules"]) for r in revisions] == [(1, "file", 3)]
        overview = turnout.api("GET", "/connections/cio/overview").json()
        assert overview["filtered_by"] == {"consent": 0, "playbook": 1, "destination": 0}
        metrics = turnout_metrics(turnout)
        assert 'turnout_delivery_filtered_messages_total{by="playbook",connection="cio"} 1.0' in (
            metrics
        )
    # The same file again adds no revision.
    with TurnoutProcess(_config(tmp_path, emulator, PLAYBOOK)) as turnout:
        revisions = turnout.api("GET", "/connections/cio/playbook/revisions").json()
        assert [r["number"] for r in revisions] == [1]


def turnout_metrics(turnout: TurnoutProcess) -> str:
    import httpx

    return httpx.get(turnout.url + "/metrics", timeout=10).text


def test_consent_filters_calls_that_do_not_grant_the_category(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    connection = 'consent = ["marketing"]\nconsent_missing = "drop"\n'
    with TurnoutProcess(_config(tmp_path, emulator, connection)) as turnout:

        def consent(granted: bool) -> dict[str, Any]:
            return {"consent": {"categoryPreferences": {"marketing": granted}}}

        _track(turnout, "u2", "Denied", "m-denied", context=consent(False))
        _track(turnout, "u2", "Missing", "m-missing")
        _track(turnout, "u2", "Granted", "m-granted", context=consent(True))
        wait_until(lambda: _events(emulator, "u2") == ["Granted"], what="the granted event")
        denied = wait_until(lambda: _trace(turnout, "m-denied"), what="the denied fate")
        missing = wait_until(lambda: _trace(turnout, "m-missing"), what="the missing fate")
        assert (denied["fate"], denied["detail"]) == ("filtered", "consent: not granted: marketing")
        assert (missing["fate"], missing["detail"]) == (
            "filtered",
            'consent: the message carries no consent (consent_missing = "drop")',
        )
        overview = turnout.api("GET", "/connections/cio/overview").json()
        assert overview["filtered_by"] == {"consent": 2, "playbook": 0, "destination": 0}
        assert _events(emulator, "u2") == ["Granted"]


def test_a_function_splits_a_call_and_its_exception_dead_letters_one_message(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "orders.py").write_text(FUNCTIONS)
    connection = """
[[connections.playbook]]
when = 'event = "Order Completed"'
function = "functions/orders.py:split_order"

[[connections.playbook]]
when = 'event = "Stock Checked"'
function = "functions/orders.py:explode"
"""
    with TurnoutProcess(_config(tmp_path, emulator, connection)) as turnout:
        products = [{"sku": "A"}, {"sku": "B"}]
        _track(turnout, "u3", "Order Completed", "m-split", properties={"products": products})
        _track(turnout, "u3", "Stock Checked", "m-boom", properties={"sku": "A", "boom": True})
        _track(turnout, "u4", "Stock Checked", "m-fine", properties={"sku": "B"})
        wait_until(
            lambda: (
                _events(emulator, "u3")
                == ["Order Completed", "purchased_product", "purchased_product"]
            ),
            what="the order and its two products",
        )
        person = emulator.state.person("u3")
        assert person is not None
        assert [a.data for a in person.events("event")][1:] == [{"sku": "A"}, {"sku": "B"}]
        wait_until(lambda: _events(emulator, "u4") == ["Stock Checked"], what="the next call")
        letters = wait_until(
            lambda: turnout.api("GET", "/dead-letters", params={"connection": "cio"}).json(),
            what="the dead letter",
        )
        assert [letter["message_id"] for letter in letters] == ["m-boom"]
        reason = letters[0]["reason"]
        assert reason.startswith(
            "playbook rule 2: function functions/orders.py:explode raised:\nTraceback"
        )
        assert reason.endswith("RuntimeError: no stock for A")
        split = wait_until(lambda: _trace(turnout, "m-split"), what="the split call's fate")
        assert split["fate"] == "delivered"


def test_revisions_through_the_api_apply_at_once_and_roll_back(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    path = "/connections/cio/playbook"
    assert turnout.api("GET", path).json() == {
        "connection": "cio", "revision": None, "rules": [], "consent": [],
        "consent_missing": "deliver", "origin": None, "created_at": None, "toml": "",
    }  # fmt: skip
    drop_a = {"rules": [{"when": 'event = "A"', "drop": True}]}
    saved = turnout.api("PUT", path, json=drop_a)
    assert saved.status_code == 200
    assert (saved.json()["revision"], saved.json()["origin"]) == (1, "api")
    assert saved.json()["toml"] == "[[connections.playbook]]\nwhen = 'event = \"A\"'\ndrop = true\n"
    _track(turnout, "u5", "A", "m-a1")
    _track(turnout, "u5", "B", "m-b1")
    wait_until(lambda: _events(emulator, "u5") == ["B"], what="B without A")

    drop_b = {"rules": [{"when": 'event = "B"', "drop": True}]}
    assert turnout.api("PUT", path, json=drop_b).json()["revision"] == 2
    _track(turnout, "u5", "A", "m-a2")
    _track(turnout, "u5", "B", "m-b2")
    wait_until(lambda: _events(emulator, "u5") == ["B", "A"], what="A without B")

    refused = turnout.api("PUT", path, json={"rules": [{"when": "event = ", "drop": True}]})
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "invalid_playbook"
    assert body["message"] == (
        "playbook rule 1, when (line 1, column 9): unexpected end of condition; expected one of:"
        " a field path, a number, a string, false, null, true"
    )
    assert body["location"] == {
        "rule": 1, "field": "when", "entry": None, "line": 1, "column": 9
    }  # fmt: skip
    function = turnout.api(
        "PUT", path, json={"rules": [{"function": "functions/orders.py:split_order"}]}
    )
    assert function.status_code == 400
    assert function.json()["message"] == (
        "playbook rule 1, function: functions may only be named in the configuration file's"
        " playbooks"
    )
    assert turnout.api("GET", path).json()["revision"] == 2  # the running one stays
    _track(turnout, "u5", "B", "m-b3")
    _track(turnout, "u5", "C", "m-c3")
    wait_until(lambda: _events(emulator, "u5") == ["B", "A", "C"], what="B still dropped")

    revisions = turnout.api("GET", path + "/revisions").json()
    assert [(r["number"], r["origin"], r["note"]) for r in revisions] == [
        (2, "api", ""),
        (1, "api", ""),
    ]
    assert revisions[0]["diff"] == (
        "--- revision 1\n+++ this revision\n@@ -1,3 +1,3 @@\n [[playbook]]\n"
        "-when = 'event = \"A\"'\n+when = 'event = \"B\"'\n drop = true\n"
    )
    one = turnout.api("GET", path + "/revisions/1").json()
    assert (one["number"], one["rules"]) == (1, drop_a["rules"])
    assert turnout.api("GET", path + "/revisions/9").status_code == 404

    rolled = turnout.api("POST", path + "/revisions/1/rollback")
    assert rolled.status_code == 200
    assert (rolled.json()["revision"], rolled.json()["rules"]) == (3, drop_a["rules"])
    latest = turnout.api("GET", path + "/revisions").json()[0]
    assert (latest["number"], latest["note"]) == (3, "rollback to revision 1")
    _track(turnout, "u5", "A", "m-a4")
    _track(turnout, "u5", "B", "m-b4")
    wait_until(lambda: _events(emulator, "u5") == ["B", "A", "C", "B"], what="A dropped again")
    record = wait_until(lambda: _trace(turnout, "m-a4"), what="the fate under revision 3")
    assert (record["fate"], record["playbook_revision"]) == ("filtered", 3)


def test_preview_runs_a_draft_over_recent_calls_without_sending(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    _track(turnout, "u6", "Test Event", "m-p1")
    _track(turnout, "u6", "Order Completed", "m-p2", properties={"total": 5})
    wait_until(lambda: len(_events(emulator, "u6")) == 2, what="both calls delivered")
    sent = len(emulator.requests)
    draft = {
        "last": 10,
        "rules": [
            {"name": "no tests", "when": 'event = "Test Event"', "drop": True},
            {"when": 'event = "Order Completed"', "rename_event": "purchase"},
        ],
    }
    answer = turnout.api("POST", "/connections/cio/playbook/preview", json=draft)
    assert answer.status_code == 200
    preview = answer.json()
    assert preview["summary"] == {
        "calls": 2, "delivered": 1, "filtered": 1,
        "filtered_by": {'playbook rule 1 "no tests": drop': 1}, "dead_lettered": 0, "changed": 1,
    }  # fmt: skip
    tested, order = preview["calls"]
    assert (tested["message_id"], tested["outcome"], tested["operations"]) == (
        "m-p1", "filtered", []
    )  # fmt: skip
    assert order["before"]["event"] == "Order Completed"
    assert [after["event"] for after in order["after"]] == ["purchase"]
    assert order["rules_applied"] == ["rule 2"]
    assert len(order["operations"]) == 1
    assert order["operations"][0]["name"] == "purchase"
    assert len(emulator.requests) == sent  # nothing was sent
    assert turnout.api("GET", "/connections/cio/playbook").json()["revision"] is None


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", "playbook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CIO_API_KEY": API_KEY, **(env or {})},
    )


def test_the_cli_runs_fixtures_and_compares_expected_results(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = _config(tmp_path, emulator, PLAYBOOK)
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "order.json").write_text(json.dumps({
        "type": "track", "userId": "u1", "event": "Order Completed",
        "properties": {"total": 5}, "timestamp": "2024-05-01T10:00:00Z",
    }))  # fmt: skip
    (fixtures / "test.json").write_text('{"type": "track", "userId": "u1", "event": "Test Event"}')
    (fixtures / "test.expected.json").write_text(
        '{"outcome": "filtered", "reason": "playbook rule 1 \\"no test events\\": drop"}'
    )
    (fixtures / "order.expected.json").write_text(json.dumps({
        "outcome": "delivered",
        "operations": [{
            "op": "PersonEvent", "kind": "event", "name": "purchase", "data": {"total": 5},
            "person": {"kind": "id", "value": "u1"}, "timestamp": 1714557600,
            "id": "01HWSSHG807VNQX5Q5KKJ0Z75H",
        }],
    }))  # fmt: skip
    passed = _cli("test", "cio", "--fixtures", str(fixtures), "--config", str(config))
    assert (passed.returncode, passed.stderr) == (0, "")
    assert passed.stdout.splitlines() == [
        "order.json: track Order Completed -> delivered",
        "  rules applied: rule 3",
        '  after: {"event": "purchase", "messageId": "order", "originalTimestamp":'
        ' "2024-05-01T10:00:00Z", "properties": {"total": 5}, "receivedAt":'
        ' "2024-05-01T10:00:00.000Z", "source": "web", "timestamp": "2024-05-01T10:00:00.000Z",'
        ' "type": "track", "userId": "u1"}',
        '  operation: {"data": {"total": 5}, "id": "01HWSSHG807VNQX5Q5KKJ0Z75H", "kind": "event",'
        ' "name": "purchase", "op": "PersonEvent", "person": {"kind": "id", "value": "u1"},'
        ' "timestamp": 1714557600}',
        "  matches order.expected.json",
        'test.json: track Test Event -> filtered: playbook rule 1 "no test events": drop',
        '  rules applied: rule 1 "no test events"',
        "  matches test.expected.json",
        "2 fixture(s) run",
    ]

    (fixtures / "test.expected.json").write_text('{"outcome": "delivered"}')
    failed = _cli("test", "cio", "--fixtures", str(fixtures), "--config", str(config))
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "  differs from test.expected.json:",
        "    --- test.expected.json",
        "    +++ result",
        "    @@ -1,3 +1,3 @@",
        "     {",
        '    -  "outcome": "delivered"',
        '    +  "outcome": "filtered"',
        "     }",
        "1 of 2 fixture(s) differ from their expected result",
    ]

    empty = tmp_path / "empty"
    empty.mkdir()
    none = _cli("test", "cio", "--fixtures", str(empty), "--config", str(config))
    assert (none.returncode, none.stderr) == (2, f"error: no *.json fixtures in {empty}\n")


def test_the_cli_reads_nothing_and_writes_nothing_where_turnout_never_ran(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = _config(tmp_path, emulator, PLAYBOOK)
    shown = _cli("preview", "cio", "--config", str(config))
    assert (shown.returncode, shown.stdout, shown.stderr) == (
        1, "no stored call of cio's sources is kept\n", ""
    )  # fmt: skip
    traced = subprocess.run(
        [sys.executable, "-m", "turnout", "trace", "--user", "u1", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CIO_API_KEY": API_KEY},
    )  # fmt: skip
    assert (traced.returncode, traced.stdout) == (1, "no call with userId u1 is kept\n")
    assert not (tmp_path / "data" / "log.db").exists()


def test_the_cli_previews_the_file_playbook_over_stored_calls(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = _config(tmp_path, emulator, "")
    with TurnoutProcess(config) as turnout:
        _track(turnout, "u7", "Test Event", "m-c1")
        _track(turnout, "u7", "Order Completed", "m-c2")
        wait_until(lambda: len(_events(emulator, "u7")) == 2, what="both delivered")
        config.write_text(config.read_text().replace('sources = ["web"]\n', 'sources = ["web"]\n'
                                                     + PLAYBOOK, 1))  # fmt: skip
        shown = _cli("preview", "cio", "--last", "10", "--config", str(config))
        calls = turnout.api("GET", "/people", params={"user_id": "u7"}).json()["calls"]
        received = [call["message"]["receivedAt"] for call in calls]
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines() == [
        'offset 1: track Test Event -> filtered: playbook rule 1 "no test events": drop',
        '  rules applied: rule 1 "no test events"',
        "offset 2: track Order Completed -> delivered",
        "  rules applied: rule 3",
        '  after: {"context": {"ip": "127.0.0.1"}, "event": "purchase", "messageId": "m-c2",'
        ' "receivedAt": "'
        + received[1]
        + '", "source": "web", "timestamp": "'
        + received[1]
        + '", "type": "track", "userId": "u7"}',
        "2 call(s): 1 delivered, 1 filtered, 0 dead-lettered, 1 changed",
        '  filtered 1: playbook rule 1 "no test events": drop',
    ]
