"""Fixtures of the peer conformance test: one emulator for Turnout's side, one for the peer's."""

from __future__ import annotations

from collections.abc import Iterator

import peer_harness
import pytest

from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator

SITE_ID = "conformance-site"
API_KEY = "conformance-key"


@pytest.fixture(scope="module")
def turnout_side() -> Iterator[CustomerIOEmulator]:
    """Where Turnout delivers each case (reset before each run)."""
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emu:
        yield emu


@pytest.fixture(scope="module")
def peer_side() -> Iterator[CustomerIOEmulator]:
    """Where the peer's requests are replayed (reset before each case)."""
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emu:
        yield emu


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The tally, at the end of every run that ran peer cases."""
    tally = peer_harness.TALLY
    if not tally:
        return
    equivalent = sum(1 for outcome in tally.values() if outcome == "equivalent")
    deliberate = sum(1 for outcome in tally.values() if outcome == "deliberate")
    failed = len(tally) - equivalent - deliberate
    line = f"{equivalent} equivalent, {deliberate} deliberate differences"
    if failed:
        line += f", {failed} failing"
    terminalreporter.write_sep("=", "Customer.io peer conformance")
    terminalreporter.write_line(f"{line} (of {len(tally)} peer cases run)")
