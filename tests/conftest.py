"""Shared fixtures: the Customer.io emulator as a real HTTP server, and a Turnout process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from cluster import Cluster
from services import services_required, skip_or_fail
from support import API_KEY, SITE_ID, TurnoutProcess, started_url, write_config
from turnout.emulators.customerio import (
    CustomerIOEmulator,
    EmulatorConfig,
    run_emulator,
)

# CI replays the same generated inputs every run, so a red run is always the code's doing and
# reproducible; elsewhere every run explores new inputs (raise TURNOUT_FUZZ_EXAMPLES to dig).
settings.register_profile("ci", derandomize=True, print_blob=True)
if services_required():
    settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Where nothing may skip (CI), a skip that did not come through `skip_or_fail` (a bare
    `pytest.skip`, a `skipif` mark, a plugin's) fails all the same."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and services_required() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where nothing may skip (CI): {report.longrepr}"


@pytest.fixture
def emulator() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emu:
        yield emu


@pytest.fixture
def turnout(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    with TurnoutProcess(write_config(tmp_path, started_url(emulator))) as process:
        yield process


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event loop
    running on the main thread while it lives, which would break every asyncio test after it."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install -y chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def cluster(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[Cluster]:
    emulator.configure(record_limit=1_000_000)
    made = Cluster(tmp_path, emulator)
    try:
        yield made
    finally:
        made.close()
