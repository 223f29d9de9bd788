"""Sends operations to Customer.io's Track API and reports what became of each one.

One client per connection, owning its HTTP connection pool. Sending within the connection's rate
gate, 429s, `Retry-After`, network errors, halving a refused batch and "one result per operation"
are the shared HTTP helpers' (`destinations.http`); what Customer.io's answers mean beyond that is
`responses`. Requests run concurrently, except that a request never starts before an earlier
request of the same `send` call that shares a person or object with it has finished; if that
earlier one did not go through, the later one is held back (reported as RETRY without being
sent), so one person's changes always reach Customer.io in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from turnout.destinations import http
from turnout.destinations.base import CheckResult, RequestGate, SendResult, Status
from turnout.destinations.customerio.operations import Operation
from turnout.destinations.customerio.requests import HttpRequest, build_requests
from turnout.destinations.customerio.responses import TITLE, classify, error_text
from turnout.destinations.customerio.settings import REGION_URLS, CustomerIOSettings

# Requests of one `send` call in flight at once; the gate still bounds the rate.
MAX_IN_FLIGHT = 16
# Whole-batch answers worth halving the batch for: Customer.io refuses a v2 batch with 400 when
# one item is malformed and 413 when it is too large.
SPLIT_ON = frozenset({400, 413})

_HELD_BACK = "not sent: an earlier operation for the same person did not go through"
_AUTH_HELD = "not sent: Customer.io rejected the credentials on an earlier request"


class CustomerIOClient:
    """A `DestinationClient` for Customer.io."""

    def __init__(
        self,
        settings: CustomerIOSettings,
        gate: RequestGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.max_batch = settings.batch_size
        self._http = http.http_client(
            destination="customerio",
            timeout=settings.request_timeout,
            transport=transport,
            base_url=settings.base_url,
            auth=httpx.BasicAuth(settings.site_id, settings.api_key),
        )

    async def send(self, operations: Sequence[Any]) -> list[SendResult]:
        """Send `operations` and return one classified result per operation, in order."""
        ops: list[Operation] = list(operations)
        results: list[SendResult | None] = [None] * len(ops)
        auth_failed = asyncio.Event()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        last: dict[str, asyncio.Task[bool]] = {}
        tasks: list[asyncio.Task[bool]] = []
        for request in build_requests(ops, self.settings.api, self.settings.batch_size):
            before = {last[key] for key in request.keys if key in last}
            task = asyncio.create_task(self._run(request, before, results, auth_failed, slots))
            tasks.append(task)
            for key in request.keys:
                last[key] = task
        await asyncio.gather(*tasks)
        return [r if r is not None else SendResult(Status.RETRY, _HELD_BACK) for r in results]

    async def _run(
        self,
        request: HttpRequest,
        before: set[asyncio.Task[bool]],
        results: list[SendResult | None],
        auth_failed: asyncio.Event,
        slots: asyncio.Semaphore,
    ) -> bool:
        """Send one request once its predecessors are done; True when every operation it
        carries is resolved (delivered or permanently failed), so later ones may follow."""
        passed = all([await task for task in before])
        if not passed or auth_failed.is_set():
            status = Status.AUTH if auth_failed.is_set() else Status.RETRY
            reason = _AUTH_HELD if auth_failed.is_set() else _HELD_BACK
            for index, part in zip(request.operations, request.parts, strict=True):
                results[index] = SendResult(status, reason, request=_summary(request, part))
            return False
        async with slots:
            answered = await self._exchange(request)
        outcome = http.one_each(answered, len(request.operations), title=TITLE)
        for index, result in zip(request.operations, outcome, strict=True):
            results[index] = result
        if any(r.status is Status.AUTH for r in outcome):
            auth_failed.set()
        return all(r.status in (Status.OK, Status.PERMANENT) for r in outcome)

    async def _exchange(self, request: HttpRequest) -> list[SendResult]:
        """One request, classified per operation. A batch that Customer.io refuses as a whole
        (400/413) is halved and re-sent, so one bad item cannot sink the rest."""
        if request.kind != "v2_batch":
            return (await self._post(request))[1]
        positions = range(len(request.operations))
        return await http.split_refused(
            positions, lambda chosen: self._post(request.select(chosen)), refused=SPLIT_ON
        )

    async def _post(self, request: HttpRequest) -> tuple[int | None, list[SendResult]]:
        """One HTTP exchange: its status (None: no answer) and a result per operation."""
        count = len(request.operations)
        answer = await http.exchange(
            self._http, self.gate, request.method, request.path, title=TITLE, content=request.body
        )
        if isinstance(answer, SendResult):
            status, outcome = None, [answer] * count
        else:
            status = answer.status_code
            batch = request.kind == "v2_batch"
            outcome = classify(status, answer.headers, answer.content, count, batch=batch)
        sent = [_summary(request, part) for part in request.parts]
        return status, http.with_request(outcome, sent)

    async def check(self) -> CheckResult:
        """Do the credentials work, and is the region right? (`GET /api/v1/accounts/region`).

        What a `track_url` address answers is never repeated, only its status and what that
        status means: the address is anyone's choice, and a check that echoed its answers would
        let whoever can run checks read the services Turnout's network reaches.
        """
        chosen = self.settings.track_url is not None
        try:
            async with self.gate.slot():
                response = await self._http.get("/api/v1/accounts/region")
        except httpx.HTTPError as exc:
            # Some errors quote what was received (a malformed status line, say).
            why = type(exc).__name__ if chosen else str(exc)
            return CheckResult(False, f"could not reach {self.settings.base_url}: {why}")
        status = response.status_code
        if status in (401, 403):
            return CheckResult(
                False,
                f"Customer.io rejected the Site ID / API key ({status}): check them under "
                "Workspace Settings > API Credentials (Track API keys)",
            )
        if status == 429:
            self.gate.slow_down(http.retry_after(response.headers.get("retry-after")))
        if status != 200 and chosen:
            return CheckResult(
                False,
                f"{self.settings.base_url} answered {status}: {_status_meaning(status)}"
                " (what a track_url address answers is not shown)",
            )
        if status != 200:
            detail = error_text(response.content) or http.describe_response(status, b"")
            return CheckResult(False, f"{self.settings.base_url} answered {status}: {detail}")
        try:
            data = response.json()
        except ValueError:
            data = {}
        region = str(data.get("region", "")).lower() if isinstance(data, dict) else ""
        if region not in REGION_URLS:  # only a region Turnout knows is ever repeated
            region = ""
        warnings = []
        if region and region != self.settings.region:
            warnings.append(
                f'the workspace is in region "{region}" but the connection is set to '
                f'"{self.settings.region}": set region = "{region}" (Customer.io redirects or '
                "refuses calls sent to the other region)"
            )
        where = f"region {region}" if region else "region unknown"
        return CheckResult(True, f"credentials accepted ({where})", warnings)

    async def aclose(self) -> None:
        await self._http.aclose()


def _status_meaning(status: int) -> str:
    """What an answer's status says, in general terms: all a check repeats of an answer from
    an address the user chose."""
    if 300 <= status < 400:
        return "a redirect, not followed (it would take the credentials elsewhere)"
    if status in (404, 405):
        return "no such endpoint: check track_url (a scheme and host, no path)"
    if status == 429:
        return "too many requests: try again shortly"
    if 400 <= status < 500:
        return "the request was refused"
    if status >= 500:
        return "a server error"
    return "not the answer Customer.io gives"


def _summary(request: HttpRequest, part: bytes) -> str:
    """What was sent for one operation: method, path and its JSON; never the credentials."""
    note = f"one item of {len(request.operations)}" if request.kind == "v2_batch" else ""
    return http.describe_request(request.method, request.path, part, note)
