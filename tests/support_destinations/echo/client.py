"""Appends operations to the connection's file, one JSON line each, inside the rate gate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turnout.destinations.base import CheckResult, RequestGate, SendResult, Status

from .settings import EchoSettings


class EchoClient:
    def __init__(self, settings: EchoSettings, gate: RequestGate) -> None:
        self._settings = settings
        self._gate = gate
        self.max_batch = settings.batch_size

    async def send(self, operations: Sequence[Any]) -> list[SendResult]:
        extra = {"labels": self._settings.labels, "token": self._settings.token}
        async with self._gate.slot():
            with Path(self._settings.path).open("a") as file:
                for operation in operations:
                    file.write(json.dumps({**operation, **extra}, sort_keys=True) + "\n")
        return [SendResult(Status.OK, request="append") for _ in operations]

    async def check(self) -> CheckResult:
        folder = Path(self._settings.path).parent
        if folder.is_dir():
            return CheckResult(True, f"can write to {folder}")
        return CheckResult(False, f"no folder {folder}")

    async def aclose(self) -> None:
        return None
