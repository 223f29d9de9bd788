"""What each Customer.io answer means for the operations a request carried: one place, each
status with its reason.

Re-sending is always harmless (events carry dedupe ids, updates carry timestamps, deletes and
merges of what is gone are no-ops), so anything that might succeed later is retried, and only
answers that say "this input can never succeed" dead-letter an operation.
"""

from __future__ import annotations

from typing import Any

import msgspec

from turnout.destinations.base import SendResult, Status
from turnout.destinations.http import retry_after

# How much of a response body is kept with a result (dead letters, the debugger).
RESPONSE_KEEP_BYTES = 4000


def classify(
    status: int,
    headers: dict[str, str],
    body: bytes,
    count: int,
    *,
    batch: bool,
) -> list[SendResult]:
    """One result per operation of a request that was answered with `status`."""
    response = describe_response(status, body)
    if 200 <= status < 300:
        if batch:
            return _batch_results(status, body, count, response)
        return [SendResult(Status.OK, response=response) for _ in range(count)]
    if 300 <= status < 400:
        # Customer.io redirects an EU workspace's calls made to the US host; following it would
        # send the credentials to another host. Pause the connection until the region is set.
        location = headers.get("location", "?")
        reason = f"redirected ({status}) to {location}: check the connection's region"
        return _same(Status.AUTH, reason, count, response)
    if status in (401, 403):
        # Wrong Site ID / API key, or a key without Track API access: nothing will pass until
        # someone fixes the credentials, so pause the connection and keep the backlog.
        return _same(Status.AUTH, f"credentials rejected ({status})", count, response)
    if status in (404, 405):
        # Every Track API endpoint Turnout uses exists for any identifier (deleting an unknown
        # person or device is a 200), so "no such endpoint" means the connection points at the
        # wrong place (a track_url with a path, a proxy): pause it and keep the backlog rather
        # than dead-letter every message.
        reason = f"Customer.io has no such endpoint ({status}): check the connection's track_url"
        return _same(Status.AUTH, reason, count, response)
    if status == 429 or status == 408 or status >= 500:
        # 429: over the rate limit. 408: the server gave up waiting for us. 5xx: Customer.io (or
        # something in front of it) failed; all are transient, and Retry-After says when to return.
        delay = retry_after(headers.get("retry-after"))
        reason = f"Customer.io answered {status}; will retry"
        return [
            SendResult(Status.RETRY, reason, retry_after=delay, response=response)
            for _ in range(count)
        ]
    # Any other 4xx: Customer.io says this request can never succeed as it is.
    reason = f"Customer.io rejected it ({status}): {error_text(body) or 'no reason given'}"
    return _same(Status.PERMANENT, reason, count, response)


def _batch_results(status: int, body: bytes, count: int, response: str) -> list[SendResult]:
    """A v2 batch: items named in `errors` failed (dead-letter them), the rest were accepted.

    Customer.io documents 207 for a partly failed batch; a 200 with `errors` is handled the same
    way in case it is ever sent. A 207 whose error list cannot be read is retried whole, since
    re-sending the accepted items is harmless.
    """
    errors = _decode(body).get("errors") if body.strip() else None
    if not isinstance(errors, list):
        if status == 207:
            reason = "Customer.io answered 207 without a readable error list; will retry"
            return _same(Status.RETRY, reason, count, response)
        return [SendResult(Status.OK, response=response) for _ in range(count)]
    failed: dict[int, list[str]] = {}
    for error in errors:
        if isinstance(error, dict) and isinstance(error.get("batch_index"), int):
            failed.setdefault(error["batch_index"], []).append(_item_error(error))
    results = []
    for index in range(count):
        if index in failed:
            reason = "Customer.io rejected it: " + "; ".join(failed[index])
            results.append(SendResult(Status.PERMANENT, reason, response=response))
        else:
            results.append(SendResult(Status.OK, response=response))
    return results


def _item_error(error: dict[str, Any]) -> str:
    parts = [str(error[key]) for key in ("reason", "field") if error.get(key)]
    message = str(error.get("message") or "")
    return f"{' '.join(parts)}: {message}" if parts and message else message or " ".join(parts)


def error_text(body: bytes) -> str:
    """Customer.io's error message from either envelope: v1 `{"meta": {"error(s)": ...}}` or v2
    `{"errors": [{"message": ...}]}`; the raw body when it is neither."""
    data = _decode(body)
    raw_meta = data.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    messages: list[str] = []
    if isinstance(meta.get("errors"), list):
        messages += [str(m) for m in meta["errors"]]
    if meta.get("error"):
        messages.append(str(meta["error"]))
    if isinstance(data.get("errors"), list):
        messages += [_item_error(e) if isinstance(e, dict) else str(e) for e in data["errors"]]
    if messages:
        return "; ".join(messages)
    return body[:500].decode("utf-8", errors="replace").strip()


def describe_response(status: int, body: bytes) -> str:
    text = body[:RESPONSE_KEEP_BYTES].decode("utf-8", errors="replace")
    return f"{status}\n{text}" if text else str(status)


def _same(status: Status, reason: str, count: int, response: str) -> list[SendResult]:
    return [SendResult(status, reason, response=response) for _ in range(count)]


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return data if isinstance(data, dict) else {}
