"""POSTs calls to the configured address and reports what became of each one.

One client per connection, owning its HTTP connection pool. Sending, the rate gate, 429s,
`Retry-After` and the meaning of each status are the shared HTTP helpers' (`destinations.http`);
what is particular to webhooks is the body (the message, or `{"batch": [...]}`) and the Standard
Webhooks headers of each attempt (`signing`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from turnout.destinations import http
from turnout.destinations.base import CheckResult, RequestGate, SendResult
from turnout.destinations.webhook import signing
from turnout.destinations.webhook.mapping import DeleteCall, WebhookCall
from turnout.destinations.webhook.settings import WebhookSettings

_BATCH_OPEN = b'{"batch":['
_BATCH_CLOSE = b"]}"


class WebhookClient:
    """A `DestinationClient` that POSTs each call, or each batch of calls, to one address."""

    def __init__(
        self,
        settings: WebhookSettings,
        gate: RequestGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.max_batch = settings.batch_size
        # Reasons name the receiver by host, which tells connections apart without the path.
        self.title = urlsplit(settings.url).netloc.rpartition("@")[2]
        self._signer = signing.Signer(settings.signing_secret) if settings.signing_secret else None
        self._http = http.http_client(
            destination="webhook",
            timeout=settings.request_timeout,
            headers=httpx.Headers(settings.headers),
            transport=transport,
        )

    async def send(self, operations: Sequence[Any]) -> list[SendResult]:
        """POST `operations` in requests of `batch_size`; one result per operation, in order.

        The requests of one call go at once: the lane hands over at most one message per person,
        so no one's order depends on which answers first.
        """
        calls: list[WebhookCall | DeleteCall] = list(operations)
        size = self.settings.batch_size
        chunks = [calls[start : start + size] for start in range(0, len(calls), size)]
        answered = await asyncio.gather(*(http.split_refused(c, self._post) for c in chunks))
        results = [result for chunk in answered for result in chunk]
        return http.one_each(results, len(calls), title=self.title)

    async def _post(
        self, calls: Sequence[WebhookCall | DeleteCall]
    ) -> tuple[int | None, list[SendResult]]:
        """One request carrying `calls`: its status (None: no answer) and a result per call."""
        batch = self.settings.batch_size > 1
        parts = [call.body() for call in calls]
        body = _BATCH_OPEN + b",".join(parts) + _BATCH_CLOSE if batch else parts[0]
        delivery = signing.webhook_id([call.message_id for call in calls], batch=batch)
        headers = signing.headers(delivery, int(time.time()), body, self._signer)
        answer = await http.exchange(
            self._http,
            self.gate,
            "POST",
            self.settings.url,
            title=self.title,
            content=body,
            headers=headers,
        )
        if isinstance(answer, SendResult):
            status, result = None, answer
        else:
            status = answer.status_code
            result = http.classify(status, answer.headers, answer.content, title=self.title)
        note = f"webhook-id {delivery}"
        if batch:
            note = f"one item of {len(calls)}, {note}"
        sent = [http.describe_request("POST", self.settings.url, part, note) for part in parts]
        return status, http.with_request([result] * len(calls), sent)

    async def check(self) -> CheckResult:
        """Is the address reachable? A `HEAD` request: nothing is delivered, nothing signed."""
        where = http.public_url(self.settings.url)
        answer = await http.exchange(
            self._http, self.gate, "HEAD", self.settings.url, title=self.title
        )
        if isinstance(answer, SendResult):
            return CheckResult(False, answer.reason.removesuffix("; will retry"))
        status = answer.status_code
        if 300 <= status < 400:
            location = answer.headers.get("location", "?")
            return CheckResult(
                False,
                f"{where} redirects ({status}) to {location}: redirects are not followed;"
                " set url to the final address",
            )
        if status >= 500 and status != 501:  # 501: HEAD not implemented, the server answers
            return CheckResult(False, f"{where} answered {status}: the receiver is failing")
        warnings = []
        if status in (401, 403):
            warnings.append(
                f"it refused the check ({status}): make sure the headers carry the credentials"
                " it expects (the check sends them, but no body and no signature)"
            )
        return CheckResult(True, f"{where} is reachable (answered {status})", warnings)

    async def aclose(self) -> None:
        await self._http.aclose()
