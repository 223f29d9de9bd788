"""The real Python tracking SDKs, pointed at Turnout by their host setting alone.

Each sends identify, track, page, screen and group through its own batching consumer (segment's
plainly and gzipped, rudder's gzipped by default, and Customer.io's own Data Pipelines SDK);
the test checks what reaches Customer.io.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sdk_calls import send_everything

from support import WRITE_KEY, TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.compat
CDP_DIR = Path(__file__).parent / "python-cdp"


def segment_client(url: str, gzip: bool) -> Any:
    from segment.analytics import Client

    errors: list[Any] = []
    client = Client(WRITE_KEY, host=url, gzip=gzip, on_error=lambda e, batch: errors.append(e))
    client.errors = errors
    return client


def rudder_client(url: str) -> Any:
    from rudderstack.analytics import Client

    errors: list[Any] = []
    # gzip is rudder-sdk-python's default; the host is its data plane URL.
    client = Client(WRITE_KEY, host=url, on_error=lambda e, batch: errors.append(e))
    client.errors = errors
    return client


def check_person(emulator: CustomerIOEmulator, user: str) -> None:
    person = wait_until(
        lambda: (p := emulator.state.person(user)) and len(p.activity) >= 3 and p,
        what=f"{user}'s profile and activity in Customer.io",
    )
    assert person.email == f"{user}@example.com"
    assert person.attributes["plan"] == "pro"
    activity = sorted((a.type, a.name) for a in person.activity)
    assert ("event", "Order Completed") in activity
    assert any(kind == "page" for kind, _ in activity)
    assert any(kind == "screen" for kind, _ in activity)
    order = next(a for a in person.activity if a.name == "Order Completed")
    assert order.data["revenue"] == 42.5
    wait_until(lambda: emulator.state.object("1", "acme"), what="the group as an object")


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_analytics_python(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, gzip: bool
) -> None:
    client = segment_client(turnout.url, gzip)
    user = f"seg-{'gz' if gzip else 'plain'}"
    send_everything(client, user)
    assert client.errors == []
    check_person(emulator, user)


def test_rudder_sdk_python_gzip_by_default(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    client = rudder_client(turnout.url)
    assert client.gzip is True
    send_everything(client, "rudder-py", rudder=True)
    assert client.errors == []
    check_person(emulator, "rudder-py")


def test_customerio_cdp_analytics_python(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    """Customer.io's own SDK (a fork of segment's, `host` replacing cdp.customer.io), in a
    process of its own: it cannot share an environment with the `customerio` Track client."""
    packages = CDP_DIR / "packages"
    if not (packages / "customerio" / "analytics").is_dir():
        pytest.fail(f"customerio-cdp-analytics is not installed in {packages}: run scripts/test.sh")
    done = subprocess.run(
        [sys.executable, str(CDP_DIR / "send_cdp.py"), turnout.url, WRITE_KEY, "cio-py"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(packages), str(CDP_DIR.parent)])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_person(emulator, "cio-py")


def test_a_partly_invalid_batch_is_not_resent_by_rudder_sdk_python(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    """rudder-sdk-python retries any answer but 200: the good calls must not come twice."""
    client = rudder_client(turnout.url)
    client.track("rudder-retry", "First")
    client.track("", "Lost: no identity", anonymous_id="")  # invalid: refused alone
    client.track("rudder-retry", "Second")
    client.flush()
    client.join()
    person = wait_until(
        lambda: (p := emulator.state.person("rudder-retry")) and len(p.activity) >= 2 and p,
        what="the two good events",
    )
    assert [a.name for a in person.activity] == ["First", "Second"]
    rejects: Callable[[], Any] = lambda: turnout.api("GET", "/rejects").json()  # noqa: E731
    assert wait_until(lambda: any(r["code"] == "no_user_anon_id" for r in rejects()))
