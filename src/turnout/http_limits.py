"""The HTTP/1.1 protocol Turnout serves with: uvicorn's httptools protocol, with limits.

uvicorn's httptools protocol alone lets one client hold unbounded memory and time: httptools
keeps a header value whole until it ends (a 32 MB header is 32 MB held), nothing bounds how long
a request head or body may take to arrive, and a connection that never sends a byte stays open
for ever. This subclass bounds every connection with the `[server]` settings:

- over `max_header_bytes` or `max_headers`: 431, then close (`headers_too_large`,
  `too_many_headers` in the `turnout_http_refused` metric);
- over `max_url_bytes`: 414, then close (`url_too_long`);
- past `header_timeout_s` or `body_timeout_s`: close, no answer (`header_timeout`,
  `body_timeout`);
- idle past `keep_alive_timeout_s` between requests: close (uvicorn's own timer);
- past `max_connections` open: 503 + Retry-After at once, then close (`too_many_connections`).

Timeouts close without an answer on purpose: SDKs drop a call answered with a 4xx other than 429
but retry one whose connection failed, and a slow network is no reason to lose a call.

Memory: the parser is never given more of a request head (or of a chunked body's trailers,
which httptools also holds whole) than `max_header_bytes`: a read is cut at the limit, and a
head not ended there is refused. Time: a request sent in one read, as SDKs send it, arms no
timer at all; a deadline is armed only when a head or body spans several reads.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, ClassVar

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from turnout.config import ServerConfig
from turnout.metrics import HTTP_REFUSED

logger = logging.getLogger(__name__)

# After a 431 or 414 the client is most likely still sending what was refused. Closing at once,
# with its bytes unread, makes the kernel reset the connection, and the client may lose the answer
# with it; so the answer is sent, the write side shut, and whatever still comes is read and
# dropped (never kept) until the client closes, for at most this long.
LINGER_S = 2.0

# File descriptors the process needs besides its HTTP connections: the log and store files,
# connections to Customer.io, NATS and PostgreSQL.
OTHER_DESCRIPTORS = 256


class Refusal(Exception):
    """Raised from a parser callback to stop parsing a request over a limit, and answer it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def protocol_class(server: ServerConfig) -> type[LimitedHttpToolsProtocol]:
    """The class to give uvicorn as `http=`, bound to these settings (uvicorn builds one protocol
    object per connection from the class alone, so the settings travel as a class attribute)."""

    class Configured(LimitedHttpToolsProtocol):
        limits = server

    return Configured


def allow_descriptors(max_connections: int) -> None:
    """Raise the soft limit on open files so that `max_connections` is what refuses connections,
    not the system (whose usual soft limit, 1024, is hardly more than the default cap)."""
    wanted = max_connections + OTHER_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        logger.warning(
            "server.max_connections = %d needs %d open files, but the system allows %d"
            " (raise `ulimit -n`, or lower max_connections)",
            max_connections,
            wanted,
            target,
        )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection, bounded in header size and count, URL length and time."""

    limits: ClassVar[ServerConfig] = ServerConfig()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn arms this after each response; it accepts any number of seconds.
        self.timeout_keep_alive = self.limits.keep_alive_timeout_s  # type: ignore[assignment]
        self._in_body = False  # from the end of a head to the end of its message
        self._fields_open = True  # a head, or a chunked body's trailers, is being read
        self._field_bytes = 0  # bytes of it given to the parser so far
        self._deadline: asyncio.TimerHandle | None = None  # head, body or lingering deadline
        self._lingering = False  # refused: what still comes is dropped

    # Connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Before any buffer or task exists for it: the cost of a refusal is this write.
            self.transport = transport
            self._lingering = True
            HTTP_REFUSED.labels("too_many_connections").inc()
            message = f"over {self.limits.max_connections} open connections; retry shortly"
            transport.write(self._answer(503, "too_many_connections", message, retry_after=1))
            transport.close()
            return
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.limits.header_timeout_s, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, plus: the parser is never given more of a head than the limit, and a
        # request that spans several reads arms a deadline.
        if self._lingering:
            return
        self._unset_keepalive_if_required()
        piece: bytes | memoryview = data
        rest: memoryview | None = None
        while True:
            if self._fields_open:
                room = self.limits.max_header_bytes - self._field_bytes
                if len(piece) > room:
                    if room <= 0:  # the limit reached, and the head still not complete
                        self._refuse(self._headers_too_large())
                        return
                    whole = memoryview(piece)
                    piece, rest = whole[:room], whole[room:]
                # A head that begins after another message's end within the same piece is not
                # counted until the next piece: pipelined heads may reach twice the limit.
                self._field_bytes += len(piece)
            if not self._parse(piece):
                return
            if rest is None:
                break
            piece, rest = rest, None
        if self._deadline is None:
            if self._in_body:
                self._arm(self.limits.body_timeout_s)
            elif self._field_bytes:
                self._arm(self.limits.header_timeout_s)

    def _parse(self, data: bytes | memoryview) -> bool:
        """uvicorn's parsing and its answers to bad requests, plus answers to refusals; whether
        the connection goes on."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            refusal = exc.__cause__ or exc.__context__
            if isinstance(refusal, Refusal):
                self._refuse(refusal)
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return False
        except httptools.HttpParserUpgrade:
            self._disarm()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return True

    # Parser callbacks ------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        # The head's bytes are within the limit already; its URL and header count are checked
        # here, once, rather than in `on_url`/`on_header`, which run for every header.
        if len(self.url) > self.limits.max_url_bytes:
            raise Refusal(
                414,
                "url_too_long",
                f"request target is over the {self.limits.max_url_bytes}-byte limit",
            )
        if len(self.headers) > self.limits.max_headers:
            raise Refusal(
                431,
                "too_many_headers",
                f"request has more than {self.limits.max_headers} header fields",
            )
        self._fields_open = False
        self._in_body = True
        if self._deadline is not None:
            self._disarm()
        HttpToolsProtocol.on_headers_complete(self)

    def on_chunk_header(self) -> None:
        # A chunk's data follows, or, after the last (empty) chunk, trailers: header fields that
        # httptools holds whole like the head's, so they are counted the same way until data.
        self._fields_open = True
        self._field_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._fields_open = False
        HttpToolsProtocol.on_body(self, body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._fields_open = True
        self._field_bytes = 0
        if self._deadline is not None:
            self._disarm()
        HttpToolsProtocol.on_message_complete(self)

    # Limits ----------------------------------------------------------------------------------

    def _headers_too_large(self) -> Refusal:
        limit = self.limits.max_header_bytes
        return Refusal(431, "headers_too_large", f"request headers are over the {limit}-byte limit")

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self._in_body:
            HTTP_REFUSED.labels("body_timeout").inc()
        elif self._field_bytes:  # a connection that never sent a byte is closed quietly
            HTTP_REFUSED.labels("header_timeout").inc()
        self.transport.close()

    def _refuse(self, refusal: Refusal) -> None:
        HTTP_REFUSED.labels(refusal.code).inc()
        self._disarm()
        self._lingering = True
        cycle = self.cycle
        answer = True
        if cycle is not None and not cycle.response_complete:
            # The application is still at a request of this connection: it will get
            # `http.disconnect`, and whatever it answers is dropped. The refusal is answered in
            # its place only if it is the refused request (trailers) and nothing is sent yet.
            answer = self._in_body and not cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
        if not answer:
            self.transport.close()
            return
        self.transport.write(self._answer(refusal.status, refusal.code, refusal.message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_S, self.transport.close)

    def _answer(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> bytes:
        """A complete response, with the body every Turnout error has (`code`, `message`)."""
        body = msgspec.json.encode({"success": False, "code": code, "message": message})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        head.append(b"connection: close\r\n\r\n")
        return b"".join(head) + body
