"""Several Turnout processes sharing NATS JetStream and PostgreSQL, as the scale-out tests run
them: each test has a stream and a schema of its own, removed afterwards (the `cluster` fixture
in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from services import create_schema, delete_stream, drop_schema, require_nats, unique
from support import TurnoutProcess, started_url, write_config
from turnout.emulators.customerio import CustomerIOEmulator

PARTITIONS = 8


class Cluster:
    """The shared services of one test: a stream and buckets of its own, a schema of its own."""

    def __init__(self, tmp_path: Path, emulator: CustomerIOEmulator) -> None:
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.nats_url = require_nats()
        self.stream = unique("turnout")
        self.schema, self.pg_url = create_schema("scale_")
        self.secret_key = Fernet.generate_key().decode()
        self.processes: list[TurnoutProcess] = []

    def process(
        self, name: str, role: str, connection: str = "", settings: str = ""
    ) -> TurnoutProcess:
        directory = self.tmp_path / name
        directory.mkdir()
        config = write_config(
            directory, started_url(self.emulator), connection=connection, settings=settings
        )
        env = {
            "TURNOUT_ROLE": role,
            "TURNOUT_SECRET_KEY": self.secret_key,
            "TURNOUT_LOG_BACKEND": "nats",
            "TURNOUT_LOG_URL": self.nats_url,
            "TURNOUT_LOG_STREAM": self.stream,
            "TURNOUT_LOG_PARTITIONS": str(PARTITIONS),
            "TURNOUT_STORE_URL": self.pg_url,
        }
        process = TurnoutProcess(config, env=env)
        self.processes.append(process)
        return process.start(timeout=40)

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        delete_stream(self.stream)
        drop_schema(self.schema)


def owned_partitions(process: TurnoutProcess) -> set[int]:
    """The partitions whose lanes run in `process`, as its connection status reports them."""
    detail = process.api("GET", "/connections/cio").json()["status"]["detail"]
    owned = detail.rsplit("partitions owned here: ", 1)[-1]
    return set() if owned == "none" else {int(p) for p in owned.split(",")}


def shared_evenly(one: TurnoutProcess, two: TurnoutProcess) -> bool:
    first, second = owned_partitions(one), owned_partitions(two)
    return first | second == set(range(PARTITIONS)) and len(first) == len(second)
