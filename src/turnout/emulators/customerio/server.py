"""Running the emulator as a real HTTP server: in a background thread for tests, or in the
foreground for ``turnout emulate customerio``.

The thread variant binds its socket itself before starting uvicorn, so ``port=0`` picks a free
port and the port is known as soon as :meth:`ThreadedServer.start` returns. uvicorn skips
installing signal handlers outside the main thread, so it is safe to run there.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

_START_TIMEOUT = 10.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, host: str, port: int, certfile: str | None,
                   keyfile: str | None, log_level: str = "warning") -> uvicorn.Config:
    """uvicorn settings for the emulator: no access log (it costs more than the handlers), no
    lifespan, a short graceful shutdown so hanging-request faults do not delay stopping."""
    return uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_level=log_level, access_log=False,
        ssl_certfile=certfile, ssl_keyfile=keyfile, timeout_graceful_shutdown=1,
        backlog=4096, server_header=False,
    )


class ThreadedServer:
    """uvicorn serving `app` from a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 certfile: str | None = None, keyfile: str | None = None) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> None:
        sock = _bind(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.app, self.host, self.port, self.certfile, self.keyfile)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"customerio-emulator:{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"emulator failed to start on {self.host}:{self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


def serve(app: Any, host: str, port: int, certfile: str | None = None,
          keyfile: str | None = None, log_level: str = "info") -> None:
    """Serve `app` in the foreground until interrupted."""
    uvicorn.Server(uvicorn_config(app, host, port, certfile, keyfile, log_level)).run()
