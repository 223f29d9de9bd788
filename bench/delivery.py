"""Delivery benchmark: throughput under a rate limit, end-to-end latency, memory with a backlog.

Runs `turnout serve` and the Customer.io emulator as separate processes (as in production, the
destination is another machine) and prints figures; it asserts nothing about time. Every wait has
a deadline: a part that does not finish in time says so (TIMEOUT) instead of hanging.

    .venv/bin/python bench/delivery.py                  # every part
    .venv/bin/python bench/delivery.py --only latency   # one part
    .venv/bin/python bench/delivery.py --backlog 1000000

1. throughput: a backlog of events for many people, a connection limited to 100 requests/s and
   an emulator that itself answers 429 above 100 requests/s; reports events/s delivered against
   what the limit allows at the batch size used, and the 429s seen.
1b. round-trip: the same limit, against an emulator that answers 20, 100 or 200 ms after each
   request (`bench/far_emulator.py`, a distant Customer.io), with `[delivery] concurrency` 8 (the
   default) and 24; reports the share of the limit used. A request holds its place in the rate
   window until a second after its answer, so the gate alone allows 1 / (1 + round trip) of it;
   `concurrency` requests in flight allow `concurrency / round trip` requests/s.
2. latency: events sent one by one at a steady rate, no rate limit; reports p50/p99 from the
   moment the SDK-side request was sent to the moment the emulator received the event.
3. recovery: events held through an outage of 503s; reports how long after Customer.io answers
   again the backlog is delivered (backoffs grown during the outage are cut short).
4. memory: a backlog of N messages ingested while the destination is down, then the lane reads
   it (still failing); reports the Turnout process's peak and current RSS.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import ADMIN_TOKEN, free_port, poll, wait_http

SITE, KEY, WRITE_KEY = "bench-site", "bench-key", "wk_bench"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


@contextmanager
def emulator(*args: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout", "emulate", "customerio", "--port", str(port),
         "--site-id", SITE, "--api-key", KEY, "--log-level", "warning", *args],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_emulator/health")
        yield url
    finally:
        process.terminate()
        process.wait()


@contextmanager
def far_emulator(round_trip_ms: float) -> Iterator[str]:
    """The emulator answering every Track request `round_trip_ms` after it was sent."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("far_emulator.py")), "--port", str(port),
         "--round-trip-ms", str(round_trip_ms), "--site-id", SITE, "--api-key", KEY],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_emulator/health", process=process)
        yield url
    finally:
        process.terminate()
        process.wait()


@contextmanager
def turnout(track_url: str, rate_limit: float, enabled: bool = True,
            concurrency: int = 8) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    config = directory / "turnout.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
data_dir = "{directory / 'data'}"
admin_token = "{ADMIN_TOKEN}"
[log]
sync = "normal"
[delivery]
concurrency = {concurrency}
[[sources]]
name = "web"
write_key = "{WRITE_KEY}"
[[connections]]
name = "cio"
destination = "customerio"
sources = ["web"]
rate_limit = {rate_limit}
enabled = {str(enabled).lower()}
[connections.settings]
site_id = "{SITE}"
api_key = "{KEY}"
track_url = "{track_url}"
batch_size = 100
"""
    )
    output = (directory / "turnout.out").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "--config", str(config), "--log-level",
         "warning"],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health")
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()
        output.close()
        print(f"  (Turnout's output: {directory / 'turnout.out'})")


def ingest(url: str, total: int, people: int, batch: int = 100, **props: Any) -> None:
    with httpx.Client(headers=AUTH, timeout=30) as client:
        for start in range(0, total, batch):
            items = [
                {"type": "track", "userId": f"user-{(start + i) % people}",
                 "event": "Bench Event", "properties": {"n": start + i, **props}}
                for i in range(min(batch, total - start))
            ]
            r = client.post(url + "/v1/batch", json={"batch": items})
            r.raise_for_status()


def counters(emu: str) -> dict[str, Any]:
    return httpx.get(emu + "/_emulator/counters", timeout=10).json()


def delivered_events(emu: str) -> int:
    return int(counters(emu)["state"].get("activity:event", 0))


def steady_rate(emu: str, events: int, timeout: float) -> float | None:
    """Events/s delivered between 10% and 90% of `events` (past the warm-up, before the tail);
    None when that stretch does not end within `timeout`."""
    if not poll(lambda: delivered_events(emu) >= events * 0.1, timeout, "10% delivered"):
        return None
    t0, d0 = time.monotonic(), delivered_events(emu)
    if not poll(lambda: delivered_events(emu) >= events * 0.9, timeout, "90% delivered", 0.1):
        return None
    return (delivered_events(emu) - d0) / (time.monotonic() - t0)


def resume(url: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    httpx.post(url + "/api/v1/connections/cio/resume", headers=headers).raise_for_status()


def throughput(events: int, people: int) -> None:
    limit = 100.0
    with emulator("--rate-limit", "100", "--rate-limit-period", "1") as emu, turnout(
        emu, limit, enabled=False
    ) as (url, _):
        ingest(url, events, people)
        resume(url)
        rate = steady_rate(emu, events, timeout=600)
        poll(lambda: delivered_events(emu) >= events, 600, "complete delivery", 0.1)
        c = counters(emu)
        statuses = c["requests"]["by_status"]
        if rate is None:
            print(f"throughput: TIMEOUT, delivered {delivered_events(emu):,} of {events:,}")
            return
        allowed = limit * 100
        print(f"throughput: {rate:,.0f} events/s delivered with a {limit:g} requests/s limit and "
              f"100 events per request = {rate / allowed:.1%} of the {allowed:,.0f} events/s "
              f"the limit allows")
        print(f"  requests by status: {statuses}; 429s: {statuses.get('429', 0)}; "
              f"delivered {delivered_events(emu):,} of {events:,}")


def round_trip(events: int, people: int, trips_ms: list[float], concurrencies: list[int]) -> None:
    """The share of the rate limit used when each answer takes `trips_ms` to come back."""
    limit = 100.0
    allowed = limit * 100
    for ms in trips_ms:
        for concurrency in concurrencies:
            with far_emulator(ms) as emu, turnout(
                emu, limit, enabled=False, concurrency=concurrency
            ) as (url, _):
                ingest(url, events, people)
                resume(url)
                rate = steady_rate(emu, events, timeout=300)
                gate = 1 / (1 + ms / 1000)
                in_flight = min(1.0, concurrency / (ms / 1000) / limit)
                shown = "TIMEOUT" if rate is None else (
                    f"{rate:,.0f} events/s = {rate / allowed:.1%} of the limit")
                print(f"round trip {ms:g} ms, concurrency {concurrency}: {shown} (the gate alone"
                      f" allows {gate:.1%}, {concurrency} in flight {in_flight:.1%})")


def latency(count: int, rate: float) -> None:
    with emulator("--record-limit", str(count + 100)) as emu, turnout(emu, 1000.0) as (url, _):
        ingest(url, 50, 50)  # warm up connections
        if not poll(lambda: delivered_events(emu) >= 50, 60, "warm-up events delivered"):
            return
        httpx.post(emu + "/_emulator/reset", json={"state": False, "faults": False})
        sent: dict[int, float] = {}
        with httpx.Client(headers=AUTH, timeout=10) as client:
            next_at = time.monotonic()
            for n in range(count):
                body = {"userId": f"lat-{n % 200}", "event": "Latency", "properties": {"n": n}}
                sent[n] = time.time()
                client.post(url + "/v1/track", json=body).raise_for_status()
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))
        poll(lambda: delivered_events(emu) >= count + 50, 30, "every latency event", 0.1)
        records = httpx.get(emu + f"/_emulator/requests?limit={count + 100}", timeout=30).json()
        arrivals: dict[int, float] = {}
        for record in records["requests"]:
            received = record.get("body")
            items = received.get("batch", [received]) if isinstance(received, dict) else []
            for item in items:
                number = (item.get("attributes") or item.get("data") or {}).get("n")
                if isinstance(number, int) and number in sent and number not in arrivals:
                    arrivals[number] = record["received_at"]
        delays = sorted((arrivals[n] - sent[n]) * 1000 for n in arrivals)
        if not delays:
            print("latency: TIMEOUT, no event arrived")
            return
        p50 = statistics.median(delays)
        p99 = delays[int(len(delays) * 0.99) - 1]
        print(f"latency: ingest → Customer.io p50 {p50:.1f} ms, p99 {p99:.1f} ms over "
              f"{len(delays)} events at {rate:g} events/s")


def recovery(events: int, outage: float) -> None:
    """How soon a backlog drains once Customer.io answers again after an outage."""
    with emulator() as emu, turnout(emu, 100.0) as (url, _):
        httpx.post(emu + "/_emulator/faults", json={"status": 503, "seconds": outage})
        ingest(url, events, events // 2)
        time.sleep(outage + 0.5)
        back = time.monotonic()
        if not poll(lambda: delivered_events(emu) >= events, 600, "delivery of the backlog"):
            print(f"recovery: TIMEOUT, {delivered_events(emu):,} of {events:,} delivered")
            return
        took = time.monotonic() - back
        print(f"recovery: after a {outage:g} s outage (503s), the {events:,} events held were "
              f"all delivered {took:.1f} s after Customer.io answered again")


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def memory(backlog: int) -> None:
    with emulator() as emu, turnout(emu, 100.0) as (url, process):
        httpx.post(emu + "/_emulator/faults", json={"status": 503, "seconds": 3600})
        started = time.monotonic()
        ingest(url, backlog, 100_000, batch=500)
        took = time.monotonic() - started
        time.sleep(5)  # the lane reads its window of the backlog and keeps retrying it
        now, peak = rss_mb(process.pid)
        print(f"memory: backlog of {backlog:,} messages (ingested in {took:.0f} s, "
              f"{backlog / took:,.0f}/s): Turnout RSS {now:.0f} MB now, {peak:.0f} MB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only",
                        choices=["throughput", "round-trip", "latency", "recovery", "memory"])
    parser.add_argument("--round-trips", default="20,100,200", help="milliseconds, comma-separated")
    parser.add_argument("--concurrency", default="8,24", help="for round-trip, comma-separated")
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--latency-events", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.only in (None, "throughput"):
        throughput(args.events, args.people)
    if args.only in (None, "round-trip"):
        round_trip(args.events, args.people, [float(t) for t in args.round_trips.split(",")],
                   [int(c) for c in args.concurrency.split(",")])
    if args.only in (None, "latency"):
        latency(args.latency_events, args.latency_rate)
    if args.only in (None, "recovery"):
        recovery(2000, args.outage)
    if args.only in (None, "memory"):
        memory(args.backlog)


if __name__ == "__main__":
    main()
