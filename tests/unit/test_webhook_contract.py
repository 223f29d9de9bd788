"""The destination contract the webhook brought: field descriptions that match each settings
struct, one-line summaries, the check timeout, and the shared HTTP helpers on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
import msgspec.inspect as mi
import pytest

from turnout.destinations import http, registry
from turnout.destinations.base import CheckResult, ConnectionStatus, SendResult, Status, run_check


@pytest.mark.parametrize("name", registry.names())
def test_fields_describe_every_setting_as_the_struct_defines_it(name: str) -> None:
    destination = registry.get(name)
    info = mi.type_info(destination.settings_type)
    assert isinstance(info, mi.StructType)
    assert [f.name for f in destination.fields] == [f.name for f in info.fields]
    for described, field in zip(destination.fields, info.fields, strict=True):
        assert described.label and described.help, described
        assert described.required == field.required, described
        if field.default is not msgspec.NODEFAULT:
            assert described.default == field.default, described
        elif field.default_factory is msgspec.NODEFAULT:
            assert described.default is None, described
        secret = described.kind == "secret" or (
            described.kind == "table" and described.name in destination.secret_fields
        )
        assert secret == (described.name in destination.secret_fields), described
        assert bool(described.choices) == (described.kind == "choice"), described


def test_describe_is_one_line_without_secrets() -> None:
    customerio = registry.get("customerio")
    cio = msgspec.convert(
        {"site_id": "s", "api_key": "k-SECRET", "region": "eu"}, customerio.settings_type
    )
    assert customerio.describe(cio) == "Customer.io, EU region"
    local = msgspec.convert(
        {"site_id": "s", "api_key": "k", "track_url": "http://127.0.0.1:9901"},
        customerio.settings_type,
    )
    assert customerio.describe(local) == "Customer.io, US region, via http://127.0.0.1:9901"
    webhook = registry.get("webhook")
    hook = msgspec.convert(
        {"url": "https://hooks.example.com:8443/in?token=SECRET"}, webhook.settings_type
    )
    assert webhook.describe(hook) == "https://hooks.example.com:8443/in"


def test_the_status_vocabulary_pages_branch_on() -> None:
    assert [s.value for s in ConnectionStatus] == [
        "ok",
        "retrying",
        "credentials_rejected",
        "misconfigured",
        "paused",
        "stopped",
    ]


class SlowCheck:
    max_batch = 1

    def __init__(self, delay: float, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error

    async def send(self, operations: Sequence[object]) -> list[SendResult]:
        return []

    async def check(self) -> CheckResult:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return CheckResult(True, "fine")

    async def aclose(self) -> None:
        return None


async def test_a_check_that_never_answers_is_cut_off() -> None:
    assert await run_check(SlowCheck(60), 0.05) == CheckResult(
        False, "no answer within 0.05s: the destination did not respond in time"
    )
    assert await run_check(SlowCheck(0), 5) == CheckResult(True, "fine")
    with pytest.raises(TimeoutError):  # the client's own error is not mistaken for the limit
        await run_check(SlowCheck(0, TimeoutError()), 5)


def test_retry_after_reads_seconds_and_dates() -> None:
    assert http.retry_after("3") == 3.0 and http.retry_after(" 0.5 ") == 0.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = http.retry_after(later)
    assert delay is not None and 25 <= delay <= 31
    assert http.retry_after("-4") == 0.0 and http.retry_after("soon") is None


async def test_split_refused_isolates_every_bad_item() -> None:
    sent: list[list[int]] = []

    async def send(items: Sequence[int]) -> tuple[int | None, list[SendResult]]:
        sent.append(list(items))
        bad = [i for i in items if i % 5 == 0]
        if bad:
            return 400, [SendResult(Status.PERMANENT, "refused") for _ in items]
        return 200, [SendResult(Status.OK) for _ in items]

    results = await http.split_refused(list(range(1, 11)), send)
    assert [r.status for r in results] == [
        Status.PERMANENT if i % 5 == 0 else Status.OK for i in range(1, 11)
    ]
    assert sent[0] == list(range(1, 11))

    sent.clear()
    down = await http.split_refused(
        [1, 2, 3], lambda items: _answer(None, Status.RETRY, len(items), sent)
    )
    assert [r.status for r in down] == [Status.RETRY] * 3 and len(sent) == 1


async def _answer(
    status: int | None, result: Status, count: int, sent: list[list[int]]
) -> tuple[int | None, list[SendResult]]:
    sent.append([count])
    return status, [SendResult(result) for _ in range(count)]


def test_one_each_turns_a_miscount_into_retries() -> None:
    ok = [SendResult(Status.OK)]
    assert http.one_each(ok, 1, title="x") == ok
    assert (
        http.one_each(ok, 2, title="x")
        == [SendResult(Status.RETRY, "x: 1 results for 2 operations; will retry")] * 2
    )


def test_requests_are_described_without_query_or_user() -> None:
    assert http.public_url("https://u:p@h.example:8443/a/b?key=SECRET#f") == (
        "https://h.example:8443/a/b"
    )
    assert http.describe_request("POST", "http://[::1]:9/x?t=1", b'{"a":1}', "note") == (
        'POST http://[::1]:9/x (note) {"a":1}'
    )
