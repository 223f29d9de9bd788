"""A faithful emulator of Customer.io's Track API (v1 and v2), built from Customer.io's published
Track API reference, its client libraries and recorded exchanges.

It is a real HTTP server: it authenticates and validates like Customer.io, answers with the same
bytes, applies calls to a read model (people, activity, devices, objects, merges, suppressions)
with Customer.io's asynchronous semantics, records every request, and injects faults on demand::

    from turnout.emulators.customerio import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(site_id="S", api_key="K"), port=0) as emu:
        ...  # point a client at emu.url
        assert emu.state.person("user-1") is not None
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .config import EmulatorConfig
from .emulator import CustomerIOEmulator
from .faults import Fault, FaultControls
from .identifiers import Ident, classify
from .model import Activity, CustomObject, Device, MergeRecord, Person
from .recorder import RecordedRequest, RequestLog
from .state import WorkspaceState

__all__ = [
    "Activity",
    "CustomObject",
    "CustomerIOEmulator",
    "Device",
    "EmulatorConfig",
    "Fault",
    "FaultControls",
    "Ident",
    "MergeRecord",
    "Person",
    "RecordedRequest",
    "RequestLog",
    "WorkspaceState",
    "classify",
    "run_emulator",
]


@contextmanager
def run_emulator(config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 certfile: str | None = None, keyfile: str | None = None,
                 seed: int | None = None) -> Iterator[CustomerIOEmulator]:
    """Run an emulator over real HTTP in a background thread for the duration of a block.

    ``port=0`` picks a free port (see ``emu.url``); `certfile`/`keyfile` switch on TLS, which the
    official Python client needs since it always builds ``https://`` URLs.
    """
    emu = CustomerIOEmulator(config, seed=seed)
    emu.start(host, port, certfile=certfile, keyfile=keyfile)
    try:
        yield emu
    finally:
        emu.stop()
