"""Privacy requests reach the destinations: Customer.io (its emulator) and a webhook receiver,
through a running `turnout serve`, in each person's order, through outages and restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_webhook_destination import SECRET, TOKEN, Receiver, config_file, webhook_connection

from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def _request(turnout: TurnoutProcess, body: dict[str, Any]) -> dict[str, Any]:
    answer = turnout.api("POST", "/privacy/requests", json=body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _view(turnout: TurnoutProcess, request_id: str) -> dict[str, Any]:
    view: dict[str, Any] = turnout.api("GET", f"/privacy/requests/{request_id}").json()
    return view


def _finished(turnout: TurnoutProcess, request_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view = _view(turnout, request_id)
        return view if view["status"] != "pending" else None

    result: dict[str, Any] = wait_until(done, timeout=30, what="the privacy request to finish")
    return result


def _destination(view: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["name"], c["destination"], c["count"]) for c in view["connections"]]


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.activity] if found else []


def _accepted_items(emulator: CustomerIOEmulator) -> list[dict[str, Any]]:
    """Every v2 batch item Customer.io accepted (answered 200), in the order received."""
    items: list[dict[str, Any]] = []
    for request in emulator.requests:
        if request.status == 200 and isinstance(request.body, dict):
            items += request.body.get("batch", [])
    return items


def _fates(turnout: TurnoutProcess, person: str) -> list[str]:
    trace = turnout.api("GET", "/people", params={"user_id": person}).json()
    return [d["fate"] for c in trace["calls"] for d in c["deliveries"]]


def test_a_deletion_waits_for_the_persons_held_call_and_reaches_customerio(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    turnout.post("/v1/identify", {"userId": "gone-1", "traits": {"plan": "pro"}})
    turnout.post("/v1/track", {"userId": "stay-1", "event": "First"})
    wait_until(lambda: _events(emulator, "stay-1") == ["First"], what="stay-1's first call")
    wait_until(lambda: emulator.state.person("gone-1") is not None, what="gone-1 at Customer.io")

    emulator.faults.fail_for(3600, status=503)
    turnout.post("/v1/track", {"userId": "gone-1", "event": "Held Back"})
    wait_until(lambda: "retrying" in _fates(turnout, "gone-1"), what="gone-1's call to wait")

    request = _request(turnout, {"action": "delete", "user_ids": ["gone-1"]})
    assert request["status"] == "pending"
    assert _destination(request) == [("cio", "pending", 0)]
    # Its held call is withdrawn; the deletion itself is sent, and waits for Customer.io.
    retrying = wait_until(
        lambda: (v := _view(turnout, request["id"]))["connections"][0]["destination"]
        == "retrying"
        and v,
        what="the deletion to be retried",
    )
    assert "503" in retrying["connections"][0]["detail"]

    emulator.faults.clear()
    turnout.post("/v1/track", {"userId": "stay-1", "event": "Second"})
    done = _finished(turnout, request["id"])
    assert (done["status"], _destination(done)) == ("done", [("cio", "done", 1)])
    wait_until(lambda: _events(emulator, "stay-1") == ["First", "Second"], what="stay-1's call")

    assert emulator.state.person("gone-1") is None
    gone = [i for i in _accepted_items(emulator) if i.get("identifiers") == {"id": "gone-1"}]
    assert [i["action"] for i in gone] == ["identify", "delete"]
    assert not any("Held Back" in json.dumps(r.body) for r in emulator.requests if r.status == 200)


def test_suppress_and_unsuppress_reach_customerio(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    turnout.post("/v1/identify", {"userId": "quiet-1", "traits": {"plan": "pro"}})
    wait_until(lambda: emulator.state.person("quiet-1") is not None, what="quiet-1 to exist")

    request = _request(turnout, {"action": "suppress", "user_ids": ["quiet-1"]})
    done = _finished(turnout, request["id"])
    assert (done["status"], _destination(done)) == ("done", [("cio", "done", 1)])
    assert emulator.state.is_suppressed("quiet-1")
    assert emulator.state.person("quiet-1") is None

    done = _finished(
        turnout, _request(turnout, {"action": "unsuppress", "user_ids": ["quiet-1"]})["id"]
    )
    assert (done["status"], _destination(done)) == ("done", [("cio", "done", 1)])
    assert emulator.state.suppressed == set()


def test_a_request_made_during_an_outage_finishes_after_it_even_across_a_restart(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    turnout.post("/v1/identify", {"userId": "out-1", "traits": {"plan": "pro"}})
    wait_until(lambda: emulator.state.person("out-1") is not None, what="out-1 to exist")
    emulator.faults.fail_for(3600, status=503)

    request = _request(turnout, {"action": "suppress_and_delete", "user_ids": ["out-1"]})
    wait_until(
        lambda: _destination(_view(turnout, request["id"])) == [("cio", "retrying", 0)],
        what="the suppression to be retried",
    )
    turnout.stop()
    turnout.start()
    view = _view(turnout, request["id"])
    assert view["status"] == "pending" and view["ids_stored_as"] == "sealed"

    emulator.faults.clear()
    done = _finished(turnout, request["id"])
    assert (done["status"], done["ids_stored_as"]) == ("done", "hashed")
    assert _destination(done) == [("cio", "done", 1)]
    assert {s["name"]: s["status"] for s in done["steps"]} == {
        "suppress": "done",
        "log": "done",
        "store": "done",
    }
    assert emulator.state.is_suppressed("out-1")
    assert emulator.state.person("out-1") is None


def test_a_webhook_receives_a_signed_delete_message(tmp_path: Path) -> None:
    env = {"HOOK_SECRET": SECRET, "HOOK_TOKEN": TOKEN}
    with (
        Receiver() as receiver,
        TurnoutProcess(config_file(tmp_path, webhook_connection(receiver)), env) as hook,
    ):
        hook.post("/v1/track", {"userId": "w-1", "event": "Before", "messageId": "m-1"})
        wait_until(lambda: len(receiver.delivered("w-1")) == 1, what="w-1's call")

        request = _request(hook, {"action": "delete", "user_ids": ["w-1"]})
        done = _finished(hook, request["id"])
        assert (done["status"], _destination(done)) == ("done", [("hook", "done", 1)])
        arrivals = receiver.delivered("w-1")
        assert len(arrivals) == 2 and all(a.verified for a in arrivals)
        deletion = arrivals[1].message
        assert sorted(deletion) == ["messageId", "timestamp", "type", "userId"]
        assert (deletion["type"], deletion["userId"]) == ("delete", "w-1")
        assert deletion["messageId"].startswith(request["id"] + "-")
        assert deletion["timestamp"].endswith("Z")

        # A webhook has no notion of suppression: nothing is sent, and the request says so.
        suppress = _request(hook, {"action": "suppress", "user_ids": ["w-2"]})
        assert (suppress["status"], _destination(suppress)) == (
            "done",
            [("hook", "not_supported", 0)],
        )
