"""Ingest throughput and latency: Turnout's tracking API against the bare server stack's ceiling.

What it measures, in one run, for each server:
- the maximum rate of `/v1/batch` requests (100 events each) and of single-event `/v1/track`
  requests, counted in events accepted *and durably committed* (checked afterwards by counting
  the rows of the log, not trusted from the load generator);
- p50/p99 request latency at half of each maximum rate (open loop: wrk paces each connection);
- the server's CPU time per event in the full-speed batch run (all its threads): unlike the rate,
  it hardly depends on how much of the machine other processes leave it;
- the same against a bare ASGI app on the same stack (uvicorn + uvloop + httptools) that only
  parses the JSON body and answers 200: the ceiling no Python server on this stack can pass.

Turnout runs as `turnout serve` with `[log] sync = "normal"` and then `"full"`, with a source but
no connection, so delivery does not compete for the CPU. The load comes from `wrk` (C, one
thread): a Python client would steal the CPU it is measuring. No pass/fail: it prints figures.

    .venv/bin/python bench/ingest.py                 # both sync modes, 5 s per measurement
    .venv/bin/python bench/ingest.py --sync full --duration 10
    .venv/bin/python bench/ingest.py --profile       # py-spy flame graph of the batch hot path
    .venv/bin/python bench/ingest.py --suppressed 100000   # with 100,000 suppressed ids
    .venv/bin/python bench/ingest.py --profile --suppressed 100000   # where the check's time goes

With `--suppressed N`, N userIds (none of them among the senders) are suppressed before the run
the way a user does it, through `POST /api/v1/privacy/requests` (5,000 a request), and Turnout
is restarted, so the list is the one it loads from its store at start; the cost of the
suppression check is the difference from a run without. After the run, one call of a suppressed
id is sent and must be counted in `turnout_ingest_suppressed_messages`: the list was in force.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import ADMIN_TOKEN, free_port, wait_http

WRITE_KEY = "wk_bench"
EVENTS_PER_BATCH = 100
CONNECTIONS = 32
IDS_PER_REQUEST = 5000  # the management API's limit per privacy request


def _event(i: int) -> dict[str, Any]:
    """A realistic analytics-next track call: ids, properties, a full browser context."""
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": f"user-{i % 5000}",
        "anonymousId": f"0b8e4b5c-5b1f-4d7e-9a3b-{i % 5000:012d}",
        "messageId": f"ajs-next-{i:08d}-3f9e7c1a2b4d5e6f",
        "timestamp": f"2026-11-28T10:00:00.{i % 1000:03d}Z",  # each call its own moment
        "properties": {"product_id": f"p-{i % 97}", "price": 19.99, "currency": "EUR"},
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "page": {
                "path": "/products/p",
                "url": "https://shop.example.com/products/p",
                "title": "Product",
                "referrer": "https://www.google.com/",
            },
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
            "locale": "en-GB",
        },
    }


BATCH_BODY = json.dumps(
    {
        "batch": [_event(i) for i in range(EVENTS_PER_BATCH)],
        "sentAt": "2026-11-28T10:00:01.000Z",
        "writeKey": WRITE_KEY,
    }
)
SINGLE_BODY = json.dumps({**_event(1), "sentAt": "2026-11-28T10:00:01.000Z"})

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic {auth}"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
{delay}
function done(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f\\n", summary.requests, bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def _ceiling_app() -> Any:
    """The ceiling: read the body, parse it as JSON, answer 200. Nothing else."""
    import msgspec

    decode = msgspec.json.decode
    ok = b'{"success":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"16")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        decode(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ok})

    return app


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_db: Path | None
    started_s: float = 0.0  # from spawning the process to /health answering 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server's process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def committed(self) -> int:
        """Events durably in the log, read from the file as another process would."""
        if self.log_db is None:
            return -1
        with sqlite3.connect(self.log_db) as conn:
            return int(conn.execute("SELECT COALESCE(SUM(count), 0) FROM chunks").fetchone()[0])


def start_ceiling() -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-ceiling", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", process=process, any_answer=True)
    return Server("ceiling (bare ASGI)", url, process, None)


def start_turnout(workdir: Path, sync: str) -> Server:
    port = free_port()
    data = workdir / f"data-{sync}"
    config = workdir / f"turnout-{sync}.toml"
    config.write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"
admin_token = "{ADMIN_TOKEN}"

[log]
sync = "{sync}"

[[sources]]
name = "bench"
write_key = "{WRITE_KEY}"
"""
    )
    output = workdir / f"turnout-{sync}.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "--config", str(config)],
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        wait_http(url + "/health", timeout=120, process=process)
    except RuntimeError as exc:  # the output goes with the temporary directory: show it
        process.kill()
        raise RuntimeError(f"{exc}; it said:\n{output.read_text()[-3000:]}") from None
    started_s = time.perf_counter() - started
    return Server(f'turnout sync="{sync}"', url, process, data / "log.db", started_s)


def _suppressed_id(i: int) -> str:
    """A suppressed userId shaped like the senders' (`user-N`), never one of them."""
    return f"user-suppressed-{i:07d}"


def suppress(server: Server, count: int) -> None:
    """Suppress `count` userIds through the management API, as a user or a script would."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=120) as api:
        for start in range(0, count, IDS_PER_REQUEST):
            ids = [_suppressed_id(i) for i in range(start, min(start + IDS_PER_REQUEST, count))]
            answer = api.post("/privacy/requests", json={"action": "suppress", "user_ids": ids})
            if answer.status_code != 202 or answer.json()["status"] != "done":
                raise RuntimeError(f"suppress request refused: {answer.status_code} {answer.text}")


def suppressed_counted(server: Server) -> int:
    """Calls of suppressed people the server answered without taking in, from /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    found = re.findall(r"^turnout_ingest_suppressed_messages_total\S* ([\d.e+]+)$", text, re.M)
    return int(sum(float(v) for v in found))


def start_suppressed(workdir: Path, sync: str, count: int) -> Server:
    """Turnout holding `count` suppressed ids loaded from its store at start, as after any
    restart: the ids are suppressed through the API, then the server is restarted."""
    server = start_turnout(workdir, sync)
    if not count:
        return server
    try:
        started = time.perf_counter()
        suppress(server, count)
        print(f"  suppressed {count:,} ids in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        server.stop()
    os.sync()  # the store's writes reach the disk now, not during the measurement
    server = start_turnout(workdir, sync)
    print(f"  restarted with them in {server.started_s:.1f} s", flush=True)
    return server


@dataclass
class Run:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(
    url: str,
    body: str,
    workdir: Path,
    duration: float,
    connections: int = CONNECTIONS,
    rate: float | None = None,
) -> Run:
    """One wrk run; with `rate`, each connection waits between requests (open-ish loop)."""
    body_file = workdir / f"body-{abs(hash(body))}.json"
    body_file.write_text(body)
    interval = int(connections * 1000 / rate) if rate else 0
    script = workdir / "bench.lua"
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    script.write_text(
        _WRK_SCRIPT.replace("{auth}", auth)
        .replace("{body}", str(body_file))
        .replace("{delay}", _pacing(interval))
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"wrk said:\n{out}")
    n, bad, p50, p99, secs = match.groups()
    return Run(int(n), int(bad), float(p50), float(p99), float(secs))


def _pacing(interval_ms: int) -> str:
    """Each connection waits a random 0..2x interval between requests: the mean rate is the
    target, and the connections drift apart instead of firing in lock-step bursts (which would
    measure wrk's synchronisation, not the server)."""
    if not interval_ms:
        return ""
    return (
        f"math.randomseed(os.time())\nfunction delay() return math.random(0, {2 * interval_ms}) end"
    )


@dataclass
class Figures:
    server: str
    batch_events_per_s: float
    single_per_s: float
    batch_half: Run
    single_half: Run
    committed_ok: str
    # The server's CPU time (all its threads) per event of the full-speed batch run: unlike the
    # rate, it does not depend on how much of the CPU other processes left the server.
    batch_cpu_us_per_event: float = 0.0


def check_suppression(server: Server, count: int) -> str:
    """One call of a suppressed id must be answered 200 and counted as kept out: proof that the
    list was in force during the run (no call of the load is suppressed)."""
    before = suppressed_counted(server)
    body = {"userId": _suppressed_id(count - 1), "event": "Product Viewed"}
    answer = httpx.post(server.url + "/v1/track", json=body, auth=(WRITE_KEY, ""), timeout=10)
    counted = suppressed_counted(server) - before
    ok = answer.status_code == 200 and counted == 1 and before == 0
    return f"{count:,} suppressed ids in force: {ok} (a suppressed call counted {counted})"


def measure(server: Server, workdir: Path, duration: float) -> Figures:
    batch_url, single_url = server.url + "/v1/batch", server.url + "/v1/track"
    wrk(batch_url, BATCH_BODY, workdir, 1)  # warm up (imports, caches, SQLite pages)
    before = server.committed()
    cpu_before = server.cpu_seconds()
    batch = wrk(batch_url, BATCH_BODY, workdir, duration)
    batch_cpu = server.cpu_seconds() - cpu_before
    single = wrk(single_url, SINGLE_BODY, workdir, duration)
    batch_half = wrk(batch_url, BATCH_BODY, workdir, duration, rate=batch.rate / 2)
    single_half = wrk(single_url, SINGLE_BODY, workdir, duration, rate=single.rate / 2)
    committed_ok = "n/a"
    if server.log_db is not None:
        answered = (batch.requests - batch.errors + batch_half.requests - batch_half.errors) * (
            EVENTS_PER_BATCH
        ) + (single.requests - single.errors + single_half.requests - single_half.errors)
        in_log = server.committed() - before
        # wrk may stop with a few requests in flight that the server still commits: >= answered.
        committed_ok = f"{in_log} in log >= {answered} answered 200: {in_log >= answered}"
    errors = batch.errors + single.errors + batch_half.errors + single_half.errors
    if errors:
        committed_ok += f" (non-2xx/socket errors: {errors})"
    return Figures(
        server.name,
        batch.rate * EVENTS_PER_BATCH,
        single.rate,
        batch_half,
        single_half,
        committed_ok,
        batch_cpu * 1e6 / max(1, (batch.requests - batch.errors) * EVENTS_PER_BATCH),
    )


def report(results: list[Figures]) -> None:
    ceiling = next((f for f in results if f.server.startswith("ceiling")), None)
    print()
    print(
        f"{'server':<24} {'batch ev/s':>11} {'single req/s':>13}"
        f" {'batch p50/p99 ms @½':>20} {'single p50/p99 ms @½':>21}"
    )
    for f in results:
        print(
            f"{f.server:<24} {f.batch_events_per_s:>11,.0f} {f.single_per_s:>13,.0f}"
            f" {f.batch_half.p50_ms:>9.2f} / {f.batch_half.p99_ms:<8.2f}"
            f" {f.single_half.p50_ms:>9.2f} / {f.single_half.p99_ms:<8.2f}"
        )
    print()
    for f in results:
        if f is ceiling:
            continue
        line = (
            f"{f.server}: batch CPU {f.batch_cpu_us_per_event:.1f} us/event;"
            f" durable check: {f.committed_ok}"
        )
        if ceiling:
            line += (
                f"; vs ceiling: batch {f.batch_events_per_s / ceiling.batch_events_per_s:.0%},"
                f" single {f.single_per_s / ceiling.single_per_s:.0%}"
            )
        targets = (
            f"targets: batch>=50,000 ev/s {'ok' if f.batch_events_per_s >= 50_000 else 'MISSED'},"
            f" single>=4,000/s {'ok' if f.single_per_s >= 4_000 else 'MISSED'},"
            f" p99<20ms {'ok' if max(f.batch_half.p99_ms, f.single_half.p99_ms) < 20 else 'MISSED'}"
        )
        print(line)
        print("   " + targets)
    print(
        f"\nload: wrk -t1 -c{CONNECTIONS}, {EVENTS_PER_BATCH} events per batch"
        f" ({len(BATCH_BODY):,} bytes), single event {len(SINGLE_BODY):,} bytes;"
        f" load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        " (other processes on the machine add noise)"
    )


def profile(workdir: Path, duration: float, suppressed: int = 0) -> None:
    """Sample the server under batch load with py-spy; writes a flame graph SVG."""
    spy_path = Path(sys.executable).with_name("py-spy")
    if not spy_path.exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    server = start_suppressed(workdir, "normal", suppressed)
    out = Path("bench-ingest-profile.svg").resolve()
    try:
        spy = subprocess.Popen(
            [
                str(spy_path),
                "record",
                "--pid",
                str(server.process.pid),
                "--duration",
                str(int(duration) + 1),
                "--threads",
                "--output",
                str(out),
            ]
        )
        wrk(server.url + "/v1/batch", BATCH_BODY, workdir, duration)
        spy.wait()
    finally:
        server.stop()
    print(f"flame graph: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--sync", choices=["normal", "full", "both"], default="both")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--suppressed",
        type=int,
        default=0,
        metavar="N",
        help="suppress N userIds (none of them sending) before the run, through the API,"
        " and restart Turnout so it loads them as at start",
    )
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        import uvicorn

        uvicorn.run(
            _ceiling_app(),
            host="127.0.0.1",
            port=args.serve_ceiling,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            profile(workdir, args.duration, args.suppressed)
            return
        results = []
        starters = [] if args.no_ceiling else [start_ceiling]
        syncs = ["normal", "full"] if args.sync == "both" else [args.sync]
        turnouts = [(lambda s=s: start_suppressed(workdir, s, args.suppressed)) for s in syncs]
        checks = []
        for start in [*starters, *turnouts]:
            server = start()
            try:
                print(f"measuring {server.name} ...", flush=True)
                results.append(measure(server, workdir, args.duration))
                if args.suppressed and server.log_db is not None:
                    checks.append(f"{server.name}: {check_suppression(server, args.suppressed)}")
            finally:
                server.stop()
        report(results)
        print(f"suppressed ids: {args.suppressed:,}")
        for line in checks:
            print(line)


if __name__ == "__main__":
    main()
