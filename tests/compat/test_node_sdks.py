"""The real Node.js tracking SDKs, pointed at Turnout by their host setting alone.

@segment/analytics-node (JSON batches), @rudderstack/rudder-sdk-node (gzip by default) and
Customer.io's own @customerio/cdp-analytics-node each send one person's identify, page, track,
screen and group; the test checks Customer.io's state.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support import WRITE_KEY, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.compat


def run_node(directory: Path, script: str, url: str, user: str, *extra: str) -> None:
    done = subprocess.run(
        ["node", script, url, WRITE_KEY, user, *extra],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(
    ("script", "user", "extra"),
    [
        ("send-analytics-node.js", "segment-node", ()),
        ("send-rudder-node.js", "rudder-node", ()),
        # Customer.io's Node SDK is a fork of segment's, with the same API.
        ("send-analytics-node.js", "customerio-node", ("@customerio/cdp-analytics-node",)),
    ],
)
def test_node_sdk_calls_reach_customerio(
    node_sdks: Path,
    turnout: TurnoutProcess,
    emulator: CustomerIOEmulator,
    script: str,
    user: str,
    extra: tuple[str, ...],
) -> None:
    run_node(node_sdks, script, turnout.url, user, *extra)
    person = wait_until(
        lambda: (p := emulator.state.person(user)) and len(p.activity) >= 3 and p,
        what=f"{user}'s profile and activity",
    )
    assert person.email == f"{user}@example.com"
    assert person.attributes["plan"] == "pro"
    kinds = {a.type for a in person.activity}
    assert {"event", "page", "screen"} <= kinds
    order = next(a for a in person.activity if a.name == "Order Completed")
    assert order.data["revenue"] == 42.5
    assert f"anon-{user}" in person.anonymous_ids
    wait_until(lambda: emulator.state.object("1", "acme"), what="the group as an object")
