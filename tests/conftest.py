"""Shared fixtures: the Customer.io emulator as a real HTTP server, and a Turnout process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import API_KEY, SITE_ID, TurnoutProcess, write_config
from turnout.emulators.customerio import (
    CustomerIOEmulator,
    EmulatorConfig,
    run_emulator,
)


@pytest.fixture
def emulator() -> Iterator[CustomerIOEmulator]:
    with run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY), port=0) as emu:
        yield emu


@pytest.fixture
def turnout(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    with TurnoutProcess(write_config(tmp_path, emulator.url)) as process:
        yield process
