"""Scale-out benchmark: delivery throughput with one, two and three delivery processes.

Runs against the real NATS JetStream and PostgreSQL (TURNOUT_TEST_NATS_URL,
TURNOUT_TEST_POSTGRES_URL; defaults to this machine). For each count of delivery processes:
a fresh stream and schema, one `--role ingest` process loads a backlog of events for many
people, then the delivery processes (`--role deliver`) start together and drain it into the
Customer.io emulator (a separate process, no rate limit). The connection starts paused, so
the processes first share the partitions out, then all resume at once; prints events/s from
the first delivered event to the last; asserts nothing about time.

    .venv/bin/python bench/scale.py                       # 1, 2, 3 processes, 60,000 events
    .venv/bin/python bench/scale.py --events 50000 --processes 1 2 3 4

Read the figures against the machine: every process, NATS, PostgreSQL and the emulator share
its cores, so on a small machine more processes mostly share the same CPU.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

from delivery import KEY, SITE, WRITE_KEY, delivered_events, emulator, ingest
from harness import ADMIN_TOKEN, free_port, poll, wait_http

NATS_URL = os.environ.get("TURNOUT_TEST_NATS_URL", "nats://127.0.0.1:4222")
PG_URL = os.environ.get("TURNOUT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PARTITIONS = 12
SETTLE = 10.0  # seconds: more than a lease's life, so joins and hand-overs are done


def start(role: str, track_url: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="turnout-scale-"))
    config = directory / "turnout.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
data_dir = "{directory / "data"}"
admin_token = "{ADMIN_TOKEN}"
[[sources]]
name = "web"
write_key = "{WRITE_KEY}"
[[connections]]
name = "cio"
destination = "customerio"
sources = ["web"]
rate_limit = 100000
enabled = false
[connections.settings]
site_id = "{SITE}"
api_key = "{KEY}"
track_url = "{track_url}"
batch_size = 100
"""
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turnout",
            "serve",
            "--config",
            str(config),
            "--role",
            role,
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", timeout=60)
    return url, process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(deliverers: int, events: int, people: int) -> float:
    stream = "bench" + uuid.uuid4().hex[:8]
    schema = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    env = {
        "TURNOUT_SECRET_KEY": Fernet.generate_key().decode(),
        "TURNOUT_LOG_BACKEND": "nats",
        "TURNOUT_LOG_URL": NATS_URL,
        "TURNOUT_LOG_STREAM": stream,
        "TURNOUT_LOG_PARTITIONS": str(PARTITIONS),
        "TURNOUT_STORE_URL": f"{PG_URL}{sep}options=-csearch_path%3D{schema}",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with emulator() as emu:
            url, process = start("ingest", emu, env)
            processes.append(process)
            began = time.monotonic()
            ingest(url, events, people)
            ingest_rate = events / (time.monotonic() - began)
            urls = []
            for _ in range(deliverers):
                deliver_url, process = start("deliver", emu, env)
                urls.append(deliver_url)
                processes.append(process)
            time.sleep(SETTLE)  # partitions spread over the processes before the clock starts
            for deliver_url in urls:  # each process resumes its own lanes at once
                httpx.post(
                    deliver_url + "/api/v1/connections/cio/resume",
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=10,
                ).raise_for_status()
            poll(lambda: delivered_events(emu) > 0, 120, "first delivered event", 0.02)
            t0 = time.monotonic()
            poll(lambda: delivered_events(emu) >= events, 600, "complete delivery", 0.1)
            done = delivered_events(emu)
            rate = done / (time.monotonic() - t0)
            if done < events:  # say where the rest stands, to find out why
                for deliver_url in urls:
                    status = httpx.get(
                        deliver_url + "/api/v1/connections/cio",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                        timeout=10,
                    ).json()
                    print(f"  stalled: {deliver_url}: {status}", flush=True)
            print(
                f"{deliverers} delivery process(es): {rate:,.0f} events/s delivered"
                f" ({done:,} of {events:,}; backlog ingested at {ingest_rate:,.0f} events/s"
                " by one ingest process)",
                flush=True,
            )
            return rate
    finally:
        for process in processes:
            stop(process)
        _drop(stream, schema)


def _drop(stream: str, schema: str) -> None:
    import asyncio

    import nats

    async def drop() -> None:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        for name in ("positions", "members", "leases"):
            with contextlib.suppress(Exception):
                await js.delete_key_value(f"{stream}-{name}")
        await js.delete_stream(stream)
        await nc.close()

    asyncio.run(drop())
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs; {PARTITIONS} partitions; {args.events:,} events for"
        f" {args.people:,} people; batches of 100 per request; no rate limit",
        flush=True,
    )
    results = {n: run(n, args.events, args.people) for n in args.processes}
    base = results[args.processes[0]]
    for n, rate in results.items():
        print(f"  {n}: {rate:,.0f} events/s ({rate / base:.2f}x)")


if __name__ == "__main__":
    main()
