"""Several Turnout processes on NATS JetStream and PostgreSQL keep the single-machine promises.

Three processes (one ingest, one deliver, one doing both) take load while a delivery process is
killed with kill -9 and another one started. Afterwards: nothing lost, nothing duplicated in
Customer.io's state, order kept per person, and the raw re-sends (the emulator dedupes by id,
so state alone would hide them) counted and held to what docs/delivery.md allows. An ingest
process killed with kill -9 under load loses none of the calls it answered 200.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from cluster import Cluster, shared_evenly
from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator

pytestmark = pytest.mark.services

class Load:
    """Posts numbered events for many people, alternating between the ingesting processes."""

    def __init__(self, targets: list[TurnoutProcess], people: int, total: int, batch: int) -> None:
        self.targets = targets
        self.people = people
        self.total = total
        self.batch = batch
        self.sent = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while n < self.total:
            items = [
                {"type": "track", "userId": f"u{(n + i) % self.people}", "event": f"e {n + i}"}
                for i in range(min(self.batch, self.total - n))
            ]
            target = self.targets[(n // self.batch) % len(self.targets)]
            for _ in range(20):  # as an SDK does: retry what was not acknowledged
                try:
                    response = target.post("/v1/batch", {"batch": items})
                    if response.status_code == 200:
                        break
                    self.errors.append(f"{response.status_code} {response.text[:100]}")
                except Exception as exc:
                    self.errors.append(repr(exc))
                time.sleep(0.2)
            else:
                raise AssertionError(f"batch at {n} never accepted: {self.errors[-3:]}")
            n += len(items)
            self.sent = n
            time.sleep(0.01)


def expected_per_person(people: int, total: int) -> dict[str, list[int]]:
    expected: dict[str, list[int]] = {}
    for n in range(total):
        expected.setdefault(f"u{n % people}", []).append(n)
    return expected


def delivered(emulator: CustomerIOEmulator, person: str) -> list[int]:
    found = emulator.state.person(person)
    if not found:
        return []
    return [int(a.name.split()[1]) for a in found.activity if a.type == "event"]


# The connection's limits in the kill test: what a killed process may have sent without
# recording it is at most RATE_LIMIT requests of BATCH events (see the test).
RATE_LIMIT = 20
BATCH = 10


def test_three_processes_survive_a_kill_9_and_a_join_without_loss_or_disorder(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    people, total = 60, 2400
    limits = {"connection": f"rate_limit = {RATE_LIMIT}", "settings": f"batch_size = {BATCH}"}
    ingest = cluster.process("ingest", "ingest", **limits)
    deliver = cluster.process("deliver", "deliver", **limits)
    both = cluster.process("both", "all", **limits)

    load = Load([ingest, both], people=people, total=total, batch=40)
    load.thread.start()
    wait_until(lambda: load.sent >= total // 3, timeout=120, what="a third of the load")
    deliver.kill()  # kill -9 while it delivers its partitions
    wait_until(lambda: load.sent >= total // 2, timeout=120, what="half of the load")
    joiner = cluster.process("joiner", "deliver", **limits)
    load.thread.join(timeout=300)
    assert not load.thread.is_alive()

    expected = expected_per_person(people, total)
    started = time.monotonic()
    wait_until(
        lambda: all(len(delivered(emulator, p)) >= len(n) for p, n in expected.items()),
        timeout=120,
        what="every event in Customer.io",
    )
    took = time.monotonic() - started

    for person, numbers in expected.items():
        got = delivered(emulator, person)
        assert sorted(got) == numbers, f"{person}: lost or duplicated in state"
        assert got == numbers, f"{person}: out of order: {got}"

    # Every request that carried each event, as the emulator saw them (its state drops repeats).
    sent = emulator.requests.sends_by_id
    assert len(sent) == total, "each event's dedupe id reached Customer.io"
    resent = {i: c for i, c in sent.items() if c > 1}
    extra = sum(sent.values()) - len(sent)
    report = (
        f"{total} events, {len(sent)} distinct dedupe ids sent, {len(resent)} sent more than once"
        f" ({extra} extra sends) across kill -9 + join; drained {took:.1f}s after the load"
        f" ended; ingest retries: {len(load.errors)}"
    )
    print(report)
    (cluster.tmp_path / "report.txt").write_text(report)
    # Only what the killed process had sent without recording its fate may go again: requests
    # in flight or answered since its last write of fates. Its share of the rate limit counts
    # each request until a second after its answer, so that is at most RATE_LIMIT requests.
    # Processes that hand partitions over on a join stop their lanes first: nothing re-sent.
    assert extra <= RATE_LIMIT * BATCH, report

    status = joiner.api("GET", "/connections/cio").json()
    assert status is not None


def test_an_ingest_process_killed_under_load_loses_no_acknowledged_call(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    """kill -9 of an `--role ingest` process while it takes calls: each call it answered 200 was
    acknowledged by JetStream first, so every one of them reaches Customer.io, in order."""
    people = 30
    ingest = cluster.process("ingest", "ingest")
    cluster.process("deliver", "deliver")
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            items = [
                {"type": "track", "userId": f"i{(n + j) % people}", "event": f"e {n + j}"}
                for j in range(20)
            ]
            try:
                response = ingest.post("/v1/batch", {"batch": items})
            except httpx.HTTPError:
                return  # the process is gone: this call was never answered
            if response.status_code == 200:
                acknowledged.extend((item["userId"], n + j) for j, item in enumerate(items))
            n += len(items)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    wait_until(lambda: len(acknowledged) >= 1000, timeout=60, what="calls answered 200")
    ingest.kill()
    stop.set()
    loader.join(timeout=30)
    assert not loader.is_alive()

    expected: dict[str, list[int]] = {}
    for person, number in acknowledged:
        expected.setdefault(person, []).append(number)
    wait_until(
        lambda: all(set(n) <= set(delivered(emulator, p)) for p, n in expected.items()),
        timeout=120,
        what="every acknowledged call in Customer.io",
    )
    for person in expected:
        got = delivered(emulator, person)
        assert got == sorted(set(got)), f"{person}: out of order or twice: {got}"
    print(f"{len(acknowledged)} events answered 200 before kill -9 of the ingest process, all"
          f" delivered; {sum(len(delivered(emulator, p)) for p in expected)} arrived in all")


def test_rate_limit_holds_across_processes(cluster: Cluster, emulator: CustomerIOEmulator) -> None:
    """Two delivery processes together keep to the connection's limit of 10 requests/s.

    Each process's gate admits its share (by the partitions it owns) and holds each place until
    a second after the answer, so no second at the receiver holds more than the limit, however
    the round trips vary; two processes each at the full limit would show 20.
    """
    # v1: one request per operation, so the limit is what paces them (not batching).
    one = cluster.process("one", "all", connection="rate_limit = 10", settings='api = "v1"')
    two = cluster.process("two", "deliver", connection="rate_limit = 10", settings='api = "v1"')
    wait_until(
        lambda: shared_evenly(one, two), timeout=60, what="the partitions shared between the two"
    )
    emulator.requests.clear()
    people = 120
    batch = [{"type": "identify", "userId": f"r{i}", "traits": {"n": i}} for i in range(people)]
    for start in range(0, people, 60):
        assert one.post("/v1/batch", {"batch": batch[start : start + 60]}).status_code == 200
    wait_until(
        lambda: all(emulator.state.person(f"r{i}") for i in range(people)),
        timeout=120,
        what="every person",
    )
    times = sorted(r.received_at for r in emulator.requests)
    paths = Counter(r.path for r in emulator.requests)
    assert len(times) >= people, paths
    # Requests per second over the run: the last second's burst counts as a whole window.
    sustained = len(times) / (times[-1] - times[0] + 1.0)
    busiest = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    again = {path: n for path, n in paths.items() if n > 1}
    print(
        f"limit 10/s, two processes: sustained {sustained:.2f}/s, busiest second {busiest},"
        f" {len(times)} requests for {people} people, sent more than once: {again}"
    )
    assert sustained <= 10 * 1.05, f"sustained {sustained:.2f} requests/s over a limit of 10/s"
    assert busiest <= 10, f"{busiest} requests in one second (limit 10/s)"
    assert two.process is not None and two.process.poll() is None


def test_a_replay_asked_while_no_process_delivers_is_done_by_the_next_one(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    """Dead letters replayed from an ingest-only process, with no delivery process running:
    the request waits in the key-value bucket, and the delivery process started afterwards
    takes it for the partitions it owns and delivers every letter."""
    v1 = 'api = "v1"'  # one request per event, so each one is refused on its own
    first = cluster.process("first", "all", settings=v1)
    emulator.faults.fail_for(3600, status=400)
    people = [f"replay-{i}" for i in range(6)]
    for person in people:
        assert first.post("/v1/track", {"userId": person, "event": "Kept"}).status_code == 200
    wait_until(
        lambda: len(first.api("GET", "/dead-letters?connection=cio").json()) == len(people),
        what="every event dead-lettered",
    )
    emulator.faults.clear()
    first.stop()

    ingest = cluster.process("ingest", "ingest", settings=v1)
    answer = ingest.api("POST", "/dead-letters/replay", json={"connection": "cio"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["replaying"] == len(people)
    time.sleep(1)
    assert not any(emulator.state.person(p) for p in people)  # nobody delivers yet

    cluster.process("deliver", "deliver", settings=v1)
    for person in people:

        def replayed(p: str = person) -> bool:
            found = emulator.state.person(p)
            return found is not None and [a.name for a in found.activity] == ["Kept"]

        wait_until(replayed, timeout=60, what=f"{person}'s replayed event")
    wait_until(
        lambda: ingest.api("GET", "/dead-letters?connection=cio").json() == [],
        what="the replayed letters to leave the list",
    )
