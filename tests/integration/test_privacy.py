"""Privacy requests against a running `turnout serve` and the Customer.io emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def _files_holding(data_dir: Path, needle: bytes) -> list[str]:
    """Every file in the data directory whose raw bytes contain `needle`."""
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and needle in p.read_bytes()
    )


def _request(turnout: TurnoutProcess, body: dict[str, Any]) -> dict[str, Any]:
    answer = turnout.api("POST", "/privacy/requests", json=body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _finished(turnout: TurnoutProcess, request_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = turnout.api("GET", f"/privacy/requests/{request_id}").json()
        return view if view["status"] != "pending" else None

    result: dict[str, Any] = wait_until(done, what="the privacy request to finish")
    return result


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.activity] if found else []


def test_suppressed_people_are_answered_but_neither_stored_nor_delivered(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    turnout.post("/v1/track", {"userId": "keep-1", "event": "Before"})
    wait_until(lambda: _events(emulator, "keep-1") == ["Before"], what="the first event")

    request = _request(turnout, {"action": "suppress", "user_ids": ["ghost-7Q"]})
    # The list holds at once; the request is done once Customer.io has been told too.
    assert request["status"] == "pending"
    step = {"name": "suppress", "status": "done", "count": 1, "detail": ""}
    assert request["steps"] == [{**step, "at": request["created_at"]}]
    assert _finished(turnout, request["id"])["status"] == "done"

    answer = turnout.post("/v1/track", {"userId": "ghost-7Q", "event": "Hidden Visit"})
    assert answer.status_code == 200 and answer.json() == {"success": True}
    batch = {
        "batch": [
            {"type": "track", "userId": "ghost-7Q", "event": "Hidden Batch"},
            {"type": "track", "userId": "keep-1", "event": "After"},
        ]
    }
    assert turnout.post("/v1/batch", batch).json() == {"success": True}
    wait_until(lambda: _events(emulator, "keep-1") == ["Before", "After"], what="keep-1's call")

    assert emulator.state.person("ghost-7Q") is None
    metrics = turnout.api("GET", "/../../metrics").text
    assert 'turnout_ingest_suppressed_messages_total{source="web"} 2.0' in metrics
    assert _files_holding(data, b"ghost-7Q") == []
    assert _files_holding(data, b"Hidden") == []

    # Unsuppressed: new calls go through again; the suppressed ones do not come back.
    _request(turnout, {"action": "unsuppress", "user_ids": ["ghost-7Q"]})
    turnout.post("/v1/track", {"userId": "ghost-7Q", "event": "Welcome Back"})
    wait_until(lambda: _events(emulator, "ghost-7Q") == ["Welcome Back"], what="the new call")


def test_calls_already_in_the_log_of_a_suppressed_person_are_filtered(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    turnout.api("POST", "/connections/cio/pause")
    turnout.post("/v1/track", {"userId": "late-1", "event": "Queued"})
    turnout.post("/v1/track", {"userId": "other-1", "event": "Queued"})
    _request(turnout, {"action": "suppress", "user_ids": ["late-1"]})
    turnout.api("POST", "/connections/cio/resume")
    wait_until(lambda: _events(emulator, "other-1") == ["Queued"], what="other-1's call")

    def fates() -> list[tuple[str, str]]:
        trace = turnout.api("GET", "/people", params={"user_id": "late-1"}).json()
        return [(d["fate"], d["detail"]) for c in trace["calls"] for d in c["deliveries"]]

    assert wait_until(fates, what="late-1's fate") == [("filtered", "suppressed")]
    assert emulator.state.person("late-1") is None


def test_delete_removes_the_persons_calls_from_every_file_and_keeps_the_others(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for i in range(3):
        turnout.post("/v1/track", {"userId": "erase-me-5Z", "event": f"Gone {i}"})
        turnout.post("/v1/track", {"userId": "stay-2", "event": f"Kept {i}"})
    # A call refused at ingest is kept with its body: it goes too.
    turnout.post("/v1/track", {"userId": "erase-me-5Z", "event": "x", "timestamp": "bad"})
    wait_until(lambda: len(_events(emulator, "stay-2")) == 3, what="stay-2's calls")
    wait_until(lambda: len(_events(emulator, "erase-me-5Z")) == 3, what="the calls to erase")

    def recorded() -> list[str]:  # fates reach the store a moment after Customer.io answers
        trace = turnout.api("GET", "/people", params={"user_id": "erase-me-5Z"}).json()
        return [d["fate"] for c in trace["calls"] for d in c["deliveries"]]

    wait_until(lambda: recorded() == ["delivered"] * 3, what="the three delivery records")
    assert _files_holding(data, b"erase-me-5Z")  # in the log and the store before

    request = _request(turnout, {"action": "delete", "user_ids": ["erase-me-5Z"]})
    assert request["status"] == "pending"
    done = _finished(turnout, request["id"])
    assert done["status"] == "done"
    assert done["ids_stored_as"] == "hashed"
    steps = {s["name"]: (s["status"], s["count"]) for s in done["steps"]}
    assert steps == {"log": ("done", 3), "store": ("done", 4)}
    assert [c["name"] for c in done["connections"]] == ["cio"]

    assert _files_holding(data, b"erase-me-5Z") == []
    assert _files_holding(data, b"Gone ") == []
    assert _files_holding(data, b"Kept 2") != []
    people = turnout.api("GET", "/people", params={"user_id": "stay-2"}).json()
    assert [c["message"]["event"] for c in people["calls"]] == ["Kept 0", "Kept 1", "Kept 2"]

    # The log goes on after the erased calls: new calls of others are delivered.
    turnout.post("/v1/track", {"userId": "stay-2", "event": "Kept 3"})
    wait_until(lambda: len(_events(emulator, "stay-2")) == 4, what="a call after the erasure")
    listed = turnout.api("GET", "/privacy/requests").json()
    assert [(r["id"], r["requested_by"]) for r in listed] == [(request["id"], "api")]


def test_the_command_line_makes_requests_through_the_server(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    command = [sys.executable, "-m", "turnout", "privacy"]
    config = ["--config", str(turnout.config)]
    made = subprocess.run(
        [*command, "suppress", "cli-1", *config],
        capture_output=True,
        text=True,
        check=False,
        env=turnout.env,
    )
    assert made.returncode == 0, made.stderr
    request_id, status = made.stdout.split()
    assert status == "pending"  # until Customer.io has been told
    _finished(turnout, request_id)
    shown = subprocess.run(
        [*command, "status", request_id, *config],
        capture_output=True,
        text=True,
        check=False,
        env=turnout.env,
    )
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["action"], view["requested_by"], view["user_ids"]) == ("suppress", "cli", 1)
    turnout.post("/v1/track", {"userId": "cli-1", "event": "Nope"})
    turnout.post("/v1/track", {"userId": "cli-2", "event": "Yes"})
    wait_until(lambda: _events(emulator, "cli-2") == ["Yes"], what="cli-2's call")
    assert emulator.state.person("cli-1") is None


def test_a_request_for_5000_ids(turnout: TurnoutProcess, emulator: CustomerIOEmulator) -> None:
    ids = [f"bulk-{i}" for i in range(5000)]
    request = _request(turnout, {"action": "suppress_and_delete", "user_ids": ids})
    done = _finished(turnout, request["id"])
    assert done["status"] == "done" and done["user_ids"] == 5000
    turnout.post("/v1/track", {"userId": "bulk-4999", "event": "Nope"})
    turnout.post("/v1/track", {"userId": "free-1", "event": "Yes"})
    wait_until(lambda: _events(emulator, "free-1") == ["Yes"], what="free-1's call")
    assert emulator.state.person("bulk-4999") is None


def test_bad_requests_are_refused_naming_the_field_and_change_nothing(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    cases = [
        ({"action": "forget", "user_ids": ["a"]}, "action"),
        ({"action": "suppress"}, "user_ids"),
        ({"action": "suppress", "user_ids": []}, "user_ids"),
        ({"action": "suppress", "user_ids": ["a", 7]}, "user_ids"),
        ({"action": "suppress", "anonymous_ids": "a"}, "anonymous_ids"),
        ({"action": "suppress", "user_ids": [f"u{i}" for i in range(5001)]}, "user_ids"),
        ({"action": "suppress", "user_ids": ["a"], "emails": ["x"]}, "emails"),
    ]
    for body, field in cases:
        answer = turnout.api("POST", "/privacy/requests", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["field"] == field
    assert turnout.api("GET", "/privacy/requests").json() == []
    turnout.post("/v1/track", {"userId": "a", "event": "Still Here"})
    wait_until(lambda: _events(emulator, "a") == ["Still Here"], what="a's call")
    assert turnout.api("GET", "/privacy/requests/pr_0").status_code == 404


def test_a_call_in_flight_when_its_person_is_deleted_leaves_no_record(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    emulator.faults.hang_next(1, seconds=4)  # held, then answered 504: a fate to record later
    turnout.post("/v1/track", {"userId": "in-flight-8W", "event": "Held"})
    wait_until(lambda: not emulator.faults.active, what="the call in flight")

    request = _request(turnout, {"action": "delete", "user_ids": ["in-flight-8W"]})
    done = _finished(turnout, request["id"])
    assert done["status"] == "done"
    steps = {s["name"]: (s["status"], s["count"]) for s in done["steps"]}
    assert steps == {"log": ("done", 1), "store": ("done", 0)}  # erased while still in flight
    assert [(c["name"], c["destination"]) for c in done["connections"]] == [("cio", "done")]

    # A later call's fate is written after the held one's would have been: by then the lane has
    # written everything it had of the deleted person's, and none of it may be on disk.
    turnout.post("/v1/track", {"userId": "after-3", "event": "Later"})

    def later_recorded() -> bool:
        trace = turnout.api("GET", "/people", params={"user_id": "after-3"}).json()
        return [d["fate"] for c in trace["calls"] for d in c["deliveries"]] == ["delivered"]

    wait_until(later_recorded, what="the later call's record")
    sent = [r for r in emulator.requests if "in-flight-8W" in json.dumps(r.body) + r.path]
    assert [(r.status, [item["action"] for item in r.body["batch"]]) for r in sent] == [
        (504, ["event"]), (200, ["delete"])
    ]  # the held send, then the deletion after its answer; never the call again
    assert _files_holding(data, b"in-flight-8W") == []
