"""`CustomerIOEmulator`: one emulated Customer.io workspace and its Track API.

It ties the parts together: settings, the read model, the request record, faults, auth and rate
limiting, and the ASGI app that serves them. It can run as a real HTTP server in a background
thread (tests) or be handed to any ASGI server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import operations as ops
from .app import TrackAPI
from .auth import Authenticator
from .config import EmulatorConfig
from .faults import FaultControls
from .ratelimit import TokenBucket
from .recorder import RequestLog
from .server import ThreadedServer
from .state import WorkspaceState


class CustomerIOEmulator:
    """An emulated Customer.io workspace.

    ``state`` is the read model, ``requests`` the record of requests, ``faults`` the fault and
    credential controls, ``app`` the ASGI application and, once started, ``url`` its base URL.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, seed: int | None = None) -> None:
        self._config = config if config is not None else EmulatorConfig()
        self.state = WorkspaceState(self._config)
        self.requests = RequestLog(self._config.record_limit)
        self.auth = Authenticator(self._config)
        self.limiter: TokenBucket | None = None
        self.faults = FaultControls(self._set_credentials, self._set_rate_limit, seed)
        self._install(self._config, rebuild_limiter=True)
        self.app = TrackAPI(self)
        self.url: str | None = None
        self._server: ThreadedServer | None = None

    # ---- settings --------------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings while running, e.g. ``configure(unknown_person_events="drop")``."""
        new = self._config.updated(changes)
        rate_keys = {"rate_limit_enabled", "rate_limit_requests", "rate_limit_period"}
        self._install(new, rebuild_limiter=bool(rate_keys & changes.keys()))
        return new

    def _install(self, config: EmulatorConfig, rebuild_limiter: bool) -> None:
        if config.record_limit != self._config.record_limit:
            self.requests.set_limit(config.record_limit)
        self._config = config
        self.state.config = config
        self.auth.config = config
        if rebuild_limiter:
            self.limiter = (TokenBucket(config.rate_limit_requests, config.rate_limit_period)
                            if config.rate_limit_enabled else None)

    def _set_credentials(self, site_id: str | None, api_key: str | None) -> None:
        changes = {k: v for k, v in (("site_id", site_id), ("api_key", api_key)) if v is not None}
        self.configure(**changes)

    def _set_rate_limit(self, requests: int | None, period: float | None) -> None:
        if requests is None:
            self.configure(rate_limit_enabled=False)
        else:
            self.configure(rate_limit_enabled=True, rate_limit_requests=requests,
                           rate_limit_period=period if period is not None else 3.0)

    # ---- processing ------------------------------------------------------------------------

    def submit(self, operations: list[ops.Operation], received_at: float) -> None:
        """Apply accepted operations now, or after ``processing_delay`` like the real (async) API.

        Called from the server's event loop; the delayed path keeps request order because every
        call is delayed by the same amount.
        """
        delay = self._config.processing_delay
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._apply, operations, received_at)
        else:
            self._apply(operations, received_at)

    def _apply(self, operations: list[ops.Operation], received_at: float) -> None:
        for op in operations:
            self.state.apply(op, received_at)

    def apply(self, operation: ops.Operation, received_at: float | None = None) -> None:
        """Apply an operation directly, without HTTP (for unit tests of the read model)."""
        self.state.apply(operation, time.time() if received_at is None else received_at)

    def reset(self, state: bool = True, requests: bool = True, faults: bool = True) -> None:
        """Forget people, recorded requests and faults (settings are kept)."""
        if state:
            self.state.reset()
        if requests:
            self.requests.clear()
        if faults:
            self.faults.clear()

    # ---- serving ---------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, *, certfile: str | None = None,
              keyfile: str | None = None) -> CustomerIOEmulator:
        """Serve over real HTTP (HTTPS with `certfile`) from a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = ThreadedServer(self.app, host, port, certfile=certfile, keyfile=keyfile)
        server.start()
        self._server = server
        self.url = server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.faults.clear()
            self._server.stop()
            self._server = None

    @property
    def port(self) -> int | None:
        return self._server.port if self._server is not None else None

    def __enter__(self) -> CustomerIOEmulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
