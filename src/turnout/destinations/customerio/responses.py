"""What each Customer.io answer means for the operations a request carried: Customer.io's own
rules (a redirect is a wrong region, 404/405 a wrong address, a v2 batch's per-item errors, the
error text of its envelopes), layered on the meaning every HTTP destination shares
(`destinations.http.classify`).

Re-sending is always harmless (events carry dedupe ids, updates carry timestamps, deletes and
merges of what is gone are no-ops), so anything that might succeed later is retried, and only
answers that say "this input can never succeed" dead-letter an operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import msgspec

from turnout.destinations import http
from turnout.destinations.base import SendResult, Status

TITLE = "Customer.io"
# Statuses whose common meaning (`http.classify`) holds for Customer.io as well.
_COMMON_4XX = frozenset({401, 403, 408, 429})


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    count: int,
    *,
    batch: bool,
) -> list[SendResult]:
    """One result per operation of a request that was answered with `status`.

    Customer.io's own rules come first; 2xx, 401/403 (credentials), 408, 429 and 5xx (retried
    after `Retry-After`) mean what they mean for every destination (`http.classify`).
    """
    own = _customerio_rule(status, headers, body, count, batch=batch)
    if own is not None:
        return own
    common = http.classify(status, headers, body, title=TITLE)
    return [replace(common) for _ in range(count)]


def _customerio_rule(
    status: int, headers: Mapping[str, str], body: bytes, count: int, *, batch: bool
) -> list[SendResult] | None:
    """The answers Customer.io gives a meaning of its own; None for the rest."""
    if 200 <= status < 300:
        if batch:
            return _batch_results(status, body, count, http.describe_response(status, body))
        return None
    response = http.describe_response(status, body)
    if 300 <= status < 400:
        # Customer.io redirects an EU workspace's calls made to the US host; following it would
        # send the credentials to another host. Pause the connection until the region is set.
        location = headers.get("location", "?")
        reason = f"redirected ({status}) to {location}: check the connection's region"
        return _same(Status.AUTH, reason, count, response)
    if status in (404, 405):
        # Every Track API endpoint Turnout uses exists for any identifier (deleting an unknown
        # person or device is a 200), so "no such endpoint" means the connection points at the
        # wrong place (a track_url with a path, a proxy): pause it and keep the backlog rather
        # than dead-letter every message.
        reason = f"Customer.io has no such endpoint ({status}): check the connection's track_url"
        return _same(Status.AUTH, reason, count, response)
    if status < 200 or (status < 500 and status not in _COMMON_4XX):
        # Any other 4xx: Customer.io says this request can never succeed as it is, and says why
        # in its own error envelope.
        reason = f"Customer.io rejected it ({status}): {error_text(body) or 'no reason given'}"
        return _same(Status.PERMANENT, reason, count, response)
    return None


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


def _same(status: Status, reason: str, count: int, response: str) -> list[SendResult]:
    return [SendResult(status, reason, response=response) for _ in range(count)]


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return data if isinstance(data, dict) else {}
