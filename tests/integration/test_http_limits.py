"""Limits on connections, seen from outside: raw sockets against a running `turnout serve`.

Each test plays a client that misbehaves (huge or numerous headers, a head or body sent too
slowly, too many connections) and checks what it gets back, and that well-behaved clients are
still served.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import WRITE_KEY, TurnoutProcess, basic, started_url, wait_until, write_config
from turnout.emulators.customerio import CustomerIOEmulator

# Small timeouts, so that the tests do not wait long; the other limits are the defaults.
LIMITS = """
header_timeout_s = 1
body_timeout_s = 1
keep_alive_timeout_s = 0.5
"""
DEADLINE = 10.0  # for what should happen within about a second
TRACK = json.dumps({"userId": "u-1", "event": "Limits Checked"}).encode()


@pytest.fixture
def limited(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    config = write_config(tmp_path, started_url(emulator), server=LIMITS)
    with TurnoutProcess(config) as process:
        yield process


def address(turnout: TurnoutProcess) -> tuple[str, int]:
    host, _, port = turnout.url.removeprefix("http://").rpartition(":")
    return host, int(port)


def connect(turnout: TurnoutProcess) -> socket.socket:
    sock = socket.create_connection(address(turnout), timeout=DEADLINE)
    return sock


def head(path: str = "/v1/track", extra: bytes = b"") -> bytes:
    auth = basic(WRITE_KEY)["Authorization"].encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: turnout\r\nContent-Type: application/json\r\n".encode()
        + b"Authorization: "
        + auth
        + b"\r\n"
        + extra
    )


def track_request() -> bytes:
    return head(extra=b"Content-Length: %d\r\n\r\n" % len(TRACK)) + TRACK


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Several answers in a row, read from one buffer (`answer` may read past its own)."""
    stream = sock.makefile("rb")
    result = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        result.append((status, stream.read(length)))
    return result


def refusal(code: str, message: str) -> bytes:
    return json.dumps(
        {"success": False, "code": code, "message": message}, separators=(",", ":")
    ).encode()


def closed_by_server(
    sock: socket.socket, keep_sending: bytes = b"", within: float = DEADLINE
) -> bytes:
    """Wait until the server closes `sock` (sending `keep_sending` now and then, as a slow client
    would); what it sent before closing."""
    sock.settimeout(0.1)
    received = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if keep_sending:
            try:
                sock.sendall(keep_sending)
            except (BrokenPipeError, ConnectionResetError):
                return received
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    raise AssertionError(f"the server kept the connection open (received {received!r})")


def refused_total(turnout: TurnoutProcess, reason: str) -> float:
    text = httpx.get(turnout.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'turnout_http_refused_total{{reason="{reason}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def rss_kb(turnout: TurnoutProcess) -> int:
    assert turnout.process is not None
    status = Path(f"/proc/{turnout.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


def test_a_64_kb_header_is_answered_431_and_the_next_connection_is_served(
    limited: TurnoutProcess,
) -> None:
    with connect(limited) as sock:
        sock.sendall(head(extra=b"X-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"))
        status, headers, body = answer(sock)
        assert (status, headers["connection"], body) == (
            431,
            "close",
            refusal("headers_too_large", "request headers are over the 16384-byte limit"),
        )
        assert closed_by_server(sock) == b""
    assert limited.post("/v1/track", {"userId": "u-1", "event": "After"}).json() == {
        "success": True
    }
    assert refused_total(limited, "headers_too_large") == 1


def test_more_than_100_headers_are_answered_431(limited: TurnoutProcess) -> None:
    many = b"".join(b"X-Header-%d: v\r\n" % i for i in range(200))
    with connect(limited) as sock:
        sock.sendall(head(extra=many + b"Content-Length: %d\r\n\r\n" % len(TRACK)) + TRACK)
        assert answer(sock)[::2] == (
            431,
            refusal("too_many_headers", "request has more than 100 header fields"),
        )


def test_a_headers_total_just_under_the_limit_is_served(limited: TurnoutProcess) -> None:
    """Browsers send large cookies: a 12 KB Cookie header is not refused."""
    cookie = b"Cookie: session=" + b"c" * 12 * 1024 + b"\r\n"
    with connect(limited) as sock:
        sock.sendall(head(extra=cookie + b"Content-Length: %d\r\n\r\n" % len(TRACK)) + TRACK)
        assert answer(sock)[::2] == (200, b'{"success":true}')


def test_a_url_over_8_kb_is_answered_414(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(head(path="/v1/track?" + "q" * 9000, extra=b"Content-Length: 0\r\n\r\n"))
        assert answer(sock)[::2] == (
            414,
            refusal("url_too_long", "request target is over the 8192-byte limit"),
        )


def test_a_header_sent_slowly_loses_its_connection(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: turnout\r\n")
        assert closed_by_server(sock, keep_sending=b"X-Slow: 1\r\n") == b""
    assert refused_total(limited, "header_timeout") == 1


def test_a_connection_that_sends_nothing_is_closed(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        assert closed_by_server(sock) == b""


def test_a_body_that_never_completes_loses_its_connection(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(head(extra=b"Content-Length: 1000\r\n\r\n") + b'{"userId":')
        assert closed_by_server(sock) == b""
    assert refused_total(limited, "body_timeout") == 1
    assert limited.post("/v1/track", {"userId": "u-1", "event": "After"}).status_code == 200


def test_a_body_sent_slowly_loses_its_connection(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(head(extra=b"Content-Length: 100000\r\n\r\n"))
        assert closed_by_server(sock, keep_sending=b" ") == b""


def test_huge_chunked_trailers_are_answered_431(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(head(extra=b"Transfer-Encoding: chunked\r\n\r\n"))
        sock.sendall(b"%x\r\n%s\r\n0\r\nX-Trailer: " % (len(TRACK), TRACK))
        sock.sendall(b"t" * 1024 * 1024)
        assert answer(sock)[::2] == (
            431,
            refusal("headers_too_large", "request headers are over the 16384-byte limit"),
        )


def test_chunked_bodies_in_large_chunks_and_pipelined_requests_are_served(
    limited: TurnoutProcess,
) -> None:
    """Chunks bigger than the header limit are data, not header fields; requests sent back to
    back in one write are each answered."""
    events = [{"type": "track", "userId": f"u-{i}", "event": "E" * 300} for i in range(100)]
    batch = json.dumps({"batch": events}).encode()
    assert len(batch) > 2 * 16384
    with connect(limited) as sock:
        sock.sendall(
            head(path="/v1/batch", extra=b"Transfer-Encoding: chunked\r\n\r\n")
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(batch), batch)
        )
        assert answer(sock)[::2] == (200, b'{"success":true}')
        sock.sendall(track_request() * 3)
        assert answers(sock, 3) == [(200, b'{"success":true}')] * 3


def test_an_idle_keep_alive_connection_is_closed(limited: TurnoutProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(track_request())
        assert answer(sock)[::2] == (200, b'{"success":true}')
        sock.sendall(track_request())  # kept alive while it is used
        assert answer(sock)[::2] == (200, b'{"success":true}')
        # Well before uvicorn's own default of 5 s: the setting is what closed it.
        assert closed_by_server(sock, within=3.0) == b""


def test_ten_8_mb_headers_do_not_grow_the_servers_memory(limited: TurnoutProcess) -> None:
    before = rss_kb(limited)
    sockets = [connect(limited) for _ in range(10)]
    try:
        for sock in sockets:  # all open at once: nothing of one may be kept while the next comes
            sock.sendall(head(extra=b"X-Big: ") + b"a" * 8 * 1024 * 1024)
        answers = [answer(sock)[0] for sock in sockets]
        grown = rss_kb(limited) - before
    finally:
        for sock in sockets:
            sock.close()
    assert answers == [431] * 10
    assert grown < 8 * 1024, f"RSS grew by {grown} KB"


@pytest.fixture
def capped(tmp_path: Path, emulator: CustomerIOEmulator) -> Iterator[TurnoutProcess]:
    config = write_config(tmp_path, started_url(emulator))
    with TurnoutProcess(config, env={"TURNOUT_MAX_CONNECTIONS": "3"}) as process:
        yield process


def served(turnout: TurnoutProcess) -> socket.socket:
    """A connection the server serves (until the connections of earlier checks are seen to be
    closed, a new one may still be over the cap)."""

    def attempt() -> socket.socket | None:
        sock = connect(turnout)
        try:
            sock.sendall(track_request())
            if answer(sock)[0] == 200:
                return sock
        except (OSError, http.client.HTTPException):  # refused: 503, or reset before it
            pass
        sock.close()
        return None

    result: socket.socket = wait_until(attempt, timeout=DEADLINE, what="a served connection")
    return result


def test_connections_beyond_the_cap_get_503_and_earlier_ones_still_work(
    capped: TurnoutProcess,
) -> None:
    first = [served(capped) for _ in range(3)]
    with connect(capped) as extra:
        status, headers, body = answer(extra)
        assert (status, headers["retry-after"], body) == (
            503,
            "1",
            refusal("too_many_connections", "over 3 open connections; retry shortly"),
        )
        assert closed_by_server(extra) == b""
    for sock in first:
        sock.sendall(track_request())
        assert answer(sock)[::2] == (200, b'{"success":true}')
    first.pop().close()
    served(capped).close()  # a place freed is taken again
    for sock in first:
        sock.close()
