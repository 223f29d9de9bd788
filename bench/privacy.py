"""Privacy requests: what they cost.

1. Deleting one person from a SQLite log of N stored calls (default 1,000,000, of 10,000 people;
   the person has N/10,000 calls spread through the log): the time `SQLiteLog.erase_persons`
   takes to find and rewrite their chunks, then the WAL truncation (`scrub`).
2. Ingest's suppression check: batched ingest (100 calls a batch, through `Ingestor.accept_batch`,
   the code behind `/v1/batch`) into a log that only counts, with an empty suppression list and
   with 100,000 suppressed ids (none of them sending). The difference is the check's cost.

No pass/fail: it prints figures.

    .venv/bin/python bench/privacy.py
    .venv/bin/python bench/privacy.py --calls 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from turnout.ingest.accept import Ingestor, Limits
from turnout.log.base import NewEntry
from turnout.log.sqlite import SQLiteLog
from turnout.privacy.suppression import Hasher, PrivacyList
from turnout.spec.normalise import RequestFacts, now
from turnout.store.models import Source
from turnout.tap import Tap

PEOPLE = 10_000
PER_APPEND = 1000


async def delete_one(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteLog(Path(tmp) / "log.db", synchronous="NORMAL")
        await log.start()
        started = time.perf_counter()
        for start in range(0, calls, PER_APPEND):
            await log.append(
                [
                    NewEntry(
                        "web",
                        f"person-{i % PEOPLE}",
                        b'{"type":"track","userId":"person-%d","event":"Viewed","properties":'
                        b'{"page":"/pricing","n":%d}}' % (i % PEOPLE, i),
                    )
                    for i in range(start, min(start + PER_APPEND, calls))
                ]
            )
        print(f"log of {calls:,} calls written in {time.perf_counter() - started:.1f} s")
        size = sum(p.stat().st_size for p in Path(tmp).glob("log.db*"))
        print(f"log files: {size / 1e6:.0f} MB")
        started = time.perf_counter()
        erased = await log.erase_persons({"person-4242"}, await log.head())
        erase_s = time.perf_counter() - started
        started = time.perf_counter()
        scrubbed = await log.scrub()
        scrub_s = time.perf_counter() - started
        print(
            f"delete one person ({erased} calls): erase {erase_s:.2f} s,"
            f" WAL truncate {scrub_s:.2f} s (ok={scrubbed})"
        )
        await log.close()


class CountingLog:
    """A log that only counts: the benchmark measures ingest's own work."""

    def __init__(self) -> None:
        self.appended = 0

    async def append(self, entries: list[NewEntry]) -> None:
        self.appended += len(entries)


async def ingest_rate(suppressed: int, seconds: float) -> float:
    log = CountingLog()
    privacy = PrivacyList(Hasher(b"k" * 32))
    privacy.users = {f"blocked-{i}" for i in range(suppressed)}
    sources = {"wk": Source("web", "wk")}
    ingestor = Ingestor(log, lambda: sources, _ignore, Tap(), Limits(), privacy)  # type: ignore[arg-type]
    body = json.dumps(
        {
            "batch": [
                {"type": "track", "userId": f"u-{i}", "event": "Viewed", "properties": {"i": i}}
                for i in range(100)
            ]
        }
    ).encode()
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        await ingestor.accept_batch(body, "wk", RequestFacts(received_at=now(), ip=None))
    return log.appended / (time.perf_counter() - started)


async def _ignore(_: object) -> None:
    return None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    await delete_one(args.calls)
    rates: dict[int, list[float]] = {}
    for suppressed in (0, 100_000, 0, 100_000):  # alternated: drift affects both alike
        rate = await ingest_rate(suppressed, args.seconds)
        rates.setdefault(suppressed, []).append(rate)
    empty, full = max(rates[0]), max(rates[100_000])
    print(
        f"batched ingest: {empty:,.0f} calls/s with no suppression,"
        f" {full:,.0f} calls/s with 100,000 suppressed ids"
        f" ({(empty - full) / empty * 100:+.1f}% cost)"
    )


if __name__ == "__main__":
    asyncio.run(main())
