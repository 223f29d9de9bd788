"""Privacy requests: what they cost.

1. Deleting one person from a SQLite log of N stored calls (default 1,000,000, of 10,000 people;
   the person has N/10,000 calls spread through the log): the time `SQLiteLog.erase_persons`
   takes to find and rewrite their chunks, then the WAL truncation (`scrub`).
   The same on the NATS JetStream log (`NATSLog.erase_persons`: the person's calls found by
   their subject, erased one by one), with its 16 partitions, in a stream of its own on the
   server at `--nats` (removed afterwards); then 100 people; then how long finding 1,000
   people takes by reading their partitions whole (what a large request does). Skipped, saying
   so, when no server answers at `--nats`.
2. Ingest's suppression check: batched ingest (100 calls a batch, through `Ingestor.accept_batch`,
   the code behind `/v1/batch`) into a log that only counts, with an empty suppression list and
   with 100,000 suppressed ids (none of them sending). The difference is the check's cost.

No pass/fail: it prints figures.

    .venv/bin/python bench/privacy.py
    .venv/bin/python bench/privacy.py --calls 200000
    .venv/bin/python bench/privacy.py --nats nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import tempfile
import time
import uuid
from pathlib import Path

from turnout.config import LogConfig
from turnout.ingest.accept import Ingestor, Limits
from turnout.log.base import NewEntry
from turnout.log.sqlite import SQLiteLog
from turnout.privacy.suppression import Hasher, PrivacyList
from turnout.spec.normalise import RequestFacts, now
from turnout.store.models import Source
from turnout.tap import Tap

PEOPLE = 10_000
PER_APPEND = 1000


def calls_of(start: int, calls: int) -> list[NewEntry]:
    return [
        NewEntry(
            "web",
            f"person-{i % PEOPLE}",
            b'{"type":"track","userId":"person-%d","event":"Viewed","properties":'
            b'{"page":"/pricing","n":%d}}' % (i % PEOPLE, i),
        )
        for i in range(start, min(start + PER_APPEND, calls))
    ]


async def delete_one(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = SQLiteLog(Path(tmp) / "log.db", synchronous="NORMAL")
        await log.start()
        started = time.perf_counter()
        for start in range(0, calls, PER_APPEND):
            await log.append(calls_of(start, calls))
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


async def delete_one_nats(calls: int, url: str) -> None:
    host, _, port = url.split("://", 1)[-1].rsplit("@", 1)[-1].partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1).close()
    except OSError:
        print(f"NATS: no server at {url}; no NATS figure (start one, or give --nats URL)")
        return
    from turnout.log.nats import NATSLog
    from turnout.log.nats_erase import PEOPLE_AT_ONCE, sequences_in, sequences_of
    from turnout.log.nats_reader import encode_envelope

    stream = f"bench_privacy_{uuid.uuid4().hex[:8]}"
    log = NATSLog(LogConfig(backend="nats", url=url, stream=stream, partitions=16))
    await log.start()
    try:
        # Written as `NATSLog.append` lays calls out (subject, envelope), but as plain publishes
        # checked by the stream's count at the end: waiting for each acknowledgement would make
        # filling take minutes, and appending is not what is measured here.
        started = time.perf_counter()
        for start in range(0, calls, PER_APPEND):
            for entry in calls_of(start, calls):
                body = encode_envelope(entry.source, entry.person, entry.payload)
                await log.nc.publish(log.subject(entry.person), body)
            await log.nc.flush()
        while (stats := await log.stats()).entries < calls:
            if time.perf_counter() - started > 600:
                print(f"NATS: only {stats.entries:,} of {calls:,} calls stored; no NATS figure")
                return
            await asyncio.sleep(0.5)
        print(
            f"NATS log of {calls:,} calls written in {time.perf_counter() - started:.1f} s"
            f" ({stats.size_bytes / 1e6:.0f} MB in the stream, 16 partitions)"
        )
        finding = asyncio.Semaphore(PEOPLE_AT_ONCE)  # as `erase_persons` looks for them

        async def find(person: str, head: int) -> list[int]:
            async with finding:
                return await sequences_of(log, person, head)

        for people in ({"person-4242"}, {f"person-{i}" for i in range(100)}):
            head = await log.head()
            started = time.perf_counter()
            found = await asyncio.gather(*(find(p, head) for p in people))
            find_s = time.perf_counter() - started
            started = time.perf_counter()
            erased = await log.erase_persons(people, head)
            erase_s = time.perf_counter() - started
            print(
                f"NATS: {len(people)} {'person' if len(people) == 1 else 'people'}:"
                f" finding their {sum(map(len, found))} calls by subject {find_s:.2f} s;"
                f" erase_persons (finds them again, then erases {erased}) {erase_s:.2f} s"
            )
        # A large request: past SCAN_FROM people in a partition, the partition is read whole.
        people = {f"person-{i}" for i in range(1000, 2000)}
        by_partition: dict[int, set[str]] = {}
        for person in people:
            by_partition.setdefault(log.partition_of(person), set()).add(person)
        started = time.perf_counter()
        found_in = [
            await sequences_in(log, part, group, await log.head())
            for part, group in sorted(by_partition.items())
        ]
        print(
            f"NATS: finding 1,000 people ({sum(map(len, found_in))} calls) by reading their"
            f" partitions: {time.perf_counter() - started:.2f} s (not erased: each erase is"
            " one synced write, as above)"
        )
    finally:
        for bucket in ("positions", "members", "leases", "replays"):
            with contextlib.suppress(Exception):
                await log.js.delete_key_value(f"{stream}-{bucket}")
        with contextlib.suppress(Exception):
            await log.js.delete_stream(stream)
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
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    await delete_one(args.calls)
    await delete_one_nats(args.calls, args.nats)
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
