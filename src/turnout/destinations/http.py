"""What every HTTP destination does the same way: send within the rate gate, read the answer.

A destination client builds its requests and decides what its destination's special answers
mean; the rest lives here so it is written once: every request inside the connection's gate slot,
a 429 slowing the whole connection down, `Retry-After` in both of its forms, the common meaning
of each status class, network errors as "retry", isolating the bad item of a refused batch, and
checking that a client answers once per operation.

A destination with its own rules classifies those statuses first and hands the rest to
`classify`, so "what a 503 means" is decided in one place for every destination.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from turnout.destinations.base import RequestGate, SendResult, SettingField, Status

# How much of a request or response body is kept with a result (dead letters, the debugger).
KEEP_BYTES = 4000
# Statuses that refuse a batch request as a whole because of what it carries: worth splitting.
BATCH_REFUSED = frozenset({400, 413, 422})

Item = TypeVar("Item")

# Every HTTP destination's answer timeout, worded once for the forms.
REQUEST_TIMEOUT_FIELD = SettingField(
    "request_timeout",
    "Request timeout (s)",
    "How long to wait for an answer before retrying.",
    "number",
    10.0,
    advanced=True,
)


def http_client(
    *,
    destination: str,
    timeout: float,
    headers: httpx.Headers | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """The one way a destination opens its HTTP client.

    Redirects are never followed: a redirect would carry the body and the stored credentials to
    an address nobody chose, so each destination classifies it instead (Customer.io: a wrong
    region; the webhook: dead-lettered, saying so). Every request names Turnout and the
    destination, and says it carries JSON unless the caller's headers say otherwise.
    """
    sent = httpx.Headers({"User-Agent": f"Turnout ({destination} destination)"})
    sent.update(headers or {})  # names ignore case: a configured User-Agent replaces ours
    sent["Content-Type"] = "application/json"
    return httpx.AsyncClient(
        timeout=timeout, headers=sent, follow_redirects=False, transport=transport, **options
    )


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


async def exchange(
    http: httpx.AsyncClient,
    gate: RequestGate,
    method: str,
    url: str,
    *,
    title: str,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response | SendResult:
    """One request inside the gate's slot: the response, or a RETRY result when none came.

    The slot is held until the answer arrives, so the gate counts the request as the destination
    does; a 429 pauses the connection for its `Retry-After`. `title` names the destination in
    reasons ("could not reach Example: ...").
    """
    try:
        async with gate.slot():
            response = await http.request(method, url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        return network_failure(exc, title=title, timeout=http.timeout.read)
    if response.status_code == 429:
        gate.slow_down(retry_after(response.headers.get("retry-after")))
    return response


def network_failure(
    exc: httpx.HTTPError, *, title: str, timeout: float | None = None
) -> SendResult:
    """A request that got no answer: always worth another try (the lane backs off)."""
    if isinstance(exc, httpx.TimeoutException):
        within = f" within {timeout:g}s" if timeout is not None else " in time"
        return SendResult(Status.RETRY, f"no answer from {title}{within}; will retry")
    return SendResult(Status.RETRY, f"could not reach {title} ({_kind(exc)}: {exc}); will retry")


def classify(status: int, headers: Mapping[str, str], body: bytes, *, title: str) -> SendResult:
    """What an answer means when the destination has no rule of its own for it.

    2xx delivered. 429, 408 and 5xx are transient: retried, after `Retry-After` when given.
    401/403 reject the connection's credentials: the lane pauses it and keeps the backlog.
    3xx is refused: following a redirect would send the body (and any credential headers) to
    an address nobody configured. Any other 4xx says the request can never succeed as it is:
    dead-lettered with the response.
    """
    response = describe_response(status, body)
    lower = {k.lower(): v for k, v in headers.items()}
    if 200 <= status < 300:
        return SendResult(Status.OK, response=response)
    if status == 429 or status == 408 or status >= 500:
        delay = retry_after(lower.get("retry-after"))
        reason = f"{title} answered {status}; will retry"
        return SendResult(Status.RETRY, reason, retry_after=delay, response=response)
    if status in (401, 403):
        return SendResult(Status.AUTH, f"credentials rejected ({status})", response=response)
    if 300 <= status < 400:
        where = lower.get("location", "?")
        reason = (
            f"{title} redirected ({status}) to {where}: redirects are not followed;"
            " set the connection's address to the final one"
        )
        return SendResult(Status.PERMANENT, reason, response=response)
    text = body[:500].decode("utf-8", errors="replace").strip()
    reason = f"{title} rejected it ({status}): {text or 'no reason given'}"
    return SendResult(Status.PERMANENT, reason, response=response)


def describe_response(status: int, body: bytes) -> str:
    """The status and the start of the body, as kept with a result."""
    text = body[:KEEP_BYTES].decode("utf-8", errors="replace")
    return f"{status}\n{text}" if text else str(status)


def describe_request(method: str, url: str, body: bytes, note: str = "") -> str:
    """Method, address and body as kept with a result: never headers (they may hold secrets),
    and the address without its query or user part, where tokens hide."""
    text = body[:KEEP_BYTES].decode("utf-8", errors="replace")
    where = f"{method} {public_url(url)}" + (f" ({note})" if note else "")
    return f"{where} {text}".rstrip()


def public_url(url: str) -> str:
    """`url` as it may be shown: scheme, host, port and path only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def split_refused(
    items: Sequence[Item],
    send: Callable[[Sequence[Item]], Awaitable[tuple[int | None, list[SendResult]]]],
    *,
    refused: Collection[int] = BATCH_REFUSED,
) -> list[SendResult]:
    """Send `items` in one request; when the destination refuses the request as a whole
    (`send` reports a status in `refused`) and it carried more than one item, send each half
    again, down to single items, so one bad item is dead-lettered and the others delivered.

    `send` answers the HTTP status (None when there was no answer) and one result per item.
    Halves go one after the other: a batch holds at most one message per person, so nobody's
    order depends on it, and the rate gate counts every request.
    """
    status, results = await send(items)
    if len(items) < 2 or status not in refused:
        return results
    half = len(items) // 2
    first = await split_refused(items[:half], send, refused=refused)
    return first + await split_refused(items[half:], send, refused=refused)


def one_each(results: Sequence[SendResult], count: int, *, title: str) -> list[SendResult]:
    """`results` when there is exactly one per operation; otherwise a RETRY for every one.

    A client that loses or invents a result would make the lane resolve the wrong message, so
    a miscount is treated as "nothing is known": every operation is tried again.
    """
    if len(results) == count:
        return list(results)
    reason = f"{title}: {len(results)} results for {count} operations; will retry"
    return [SendResult(Status.RETRY, reason) for _ in range(count)]


def with_request(results: Sequence[SendResult], requests: Sequence[str]) -> list[SendResult]:
    """Copies of `results`, each saying what was sent for its operation."""
    return [
        SendResult(r.status, r.reason, r.retry_after, request, r.response)
        for r, request in zip(results, requests, strict=True)
    ]


def _kind(exc: Any) -> str:
    return type(exc).__name__
