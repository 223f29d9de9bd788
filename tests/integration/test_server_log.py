"""What `turnout serve` writes to its log at the default level: state changes, not a line per
request sent to Customer.io."""

from __future__ import annotations

from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator


def test_default_log_has_state_changes_and_no_request_lines(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    for n in range(5):
        assert turnout.post("/v1/track", {"userId": f"u-{n}", "event": "Logged"}).status_code == 200
    wait_until(lambda: all(emulator.state.person(f"u-{n}") for n in range(5)), what="five people")
    assert turnout.api("POST", "/connections/cio/pause").status_code == 200
    assert turnout.api("POST", "/connections/cio/resume").status_code == 200
    emulator.configure(api_key="rotated-elsewhere")  # Customer.io now refuses Turnout's key
    assert turnout.post("/v1/track", {"userId": "u-9", "event": "Held"}).status_code == 200

    log = wait_until(
        lambda: "delivery on hold" in (text := turnout.output.read_text()) and text,
        what="the connection put on hold",
    )
    assert "INFO turnout.web: connection cio paused" in log
    assert "INFO turnout.web: connection cio resumed" in log
    assert (
        "WARNING turnout.delivery: connection cio: credentials rejected (401); delivery on hold"
        in log
    )
    assert "HTTP Request:" not in log
