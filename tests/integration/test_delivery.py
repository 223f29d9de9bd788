"""The delivery engine's promises, against the emulator's fault injection.

Isolation per connection, order per person across retries, nothing lost or duplicated across
kill -9, outages of 5xx and 429 ridden out, credentials rejected then fixed, dead letters replayed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from support import (
    API_KEY,
    SITE_ID,
    WRITE_KEY,
    TurnoutProcess,
    basic,
    started_url,
    wait_until,
    write_config,
)
from turnout.emulators.customerio import CustomerIOEmulator, EmulatorConfig, run_emulator


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.activity] if found else []


def _sent_ids(emulator: CustomerIOEmulator) -> Counter[str]:
    """Dedupe ids of every event item the emulator was sent and accepted (re-sends included)."""
    ids: Counter[str] = Counter()
    for request in list(emulator.requests):
        if request.status != 200 or not isinstance(request.body, dict):
            continue
        for item in request.body.get("batch", [request.body]):
            if isinstance(item, dict) and item.get("id"):
                ids[item["id"]] += 1
    return ids


def test_one_person_order_survives_retries_while_others_flow(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    # Backoff capped at 2 s: a send failing six times in a row (0.3^6 of them) would otherwise
    # wait up to a minute, and this is about order, not about how long backoff lasts.
    config = write_config(tmp_path, started_url(emulator), extra="max_backoff_s = 2")
    emulator.faults.fail_fraction(0.3, status=503)
    batch = [{"type": "track", "userId": f"p{i % 5}", "event": f"n {i}"} for i in range(100)]
    with TurnoutProcess(config) as turnout:
        for start in range(0, 100, 20):
            body = {"batch": batch[start : start + 20]}
            assert turnout.post("/v1/batch", body).status_code == 200
        for person in (f"p{k}" for k in range(5)):

            def twenty_events(p: str = person) -> list[str] | None:
                events = _events(emulator, p)
                return events if len(events) == 20 else None

            names = wait_until(twenty_events, timeout=60, what=f"twenty events of {person}")
            numbers = [int(n.split()[1]) for n in names]
            assert numbers == sorted(numbers), f"{person} out of order: {numbers}"
    emulator.faults.clear()


def test_a_failing_connection_does_not_slow_another(tmp_path: Path) -> None:
    with (
        run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY)) as healthy,
        run_emulator(EmulatorConfig(site_id=SITE_ID, api_key=API_KEY)) as broken,
    ):
        broken.faults.fail_for(3600, status=503)
        config = write_config(
            tmp_path,
            started_url(healthy),
            extra=f"""
[[connections]]
name = "broken"
destination = "customerio"
sources = ["web"]
[connections.settings]
site_id = "{SITE_ID}"
api_key = "env:CIO_API_KEY"
track_url = "{broken.url}"
""",
        )
        with TurnoutProcess(config) as turnout:
            for i in range(50):
                turnout.post("/v1/track", {"userId": f"u{i}", "event": "ping"})
            wait_until(
                lambda: sum(len(_events(healthy, f"u{i}")) for i in range(50)) == 50,
                what="all fifty events at the healthy connection",
            )
            assert broken.state.people == []
            status = turnout.api("GET", "/connections/broken").json()["status"]
            assert status["held"] == 50 or status["blocked_people"] > 0


KILL_PEOPLE = 40
KILL_RATE_LIMIT = 50  # requests/s
KILL_BATCH = 10  # operations per request


def _sending(emulator: CustomerIOEmulator) -> bool:
    """Whether requests are arriving right now: one arrives within the next 50 ms."""
    before = emulator.requests.total
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        if emulator.requests.total != before:
            return True
        time.sleep(0.0005)
    return False


def test_a_kill_9_under_load_loses_nothing_and_resends_only_what_was_unrecorded(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    """kill -9 while the lane sends. Every acknowledged event arrives, in order per person; and
    counted at the emulator, which sees every request (also those whose event it drops as a
    repeat), the events sent twice are only those the lane had sent without recording their
    fate: requests in flight or answered since its last write of fates (every 100 ms). The rate
    limit bounds them: it counts a request until a second after its answer, so at most
    `rate_limit` requests of `batch_size` events were in flight or answered in the last second."""
    emulator.configure(record_limit=100_000)
    config = write_config(
        tmp_path,
        started_url(emulator),
        connection=f"rate_limit = {KILL_RATE_LIMIT}",
        settings=f"batch_size = {KILL_BATCH}",
    )
    acknowledged: list[tuple[str, int]] = []
    turnout = TurnoutProcess(config).start()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers=basic(WRITE_KEY), timeout=30) as client:
            n = 0
            while not stop.is_set():
                batch = [
                    {"type": "track", "userId": f"k{(n + j) % KILL_PEOPLE}", "event": f"e {n + j}"}
                    for j in range(20)
                ]
                try:
                    r = client.post(turnout.url + "/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    n += 20  # not answered (the process was killed): maybe stored, maybe not
                    continue
                if r.status_code == 200:
                    acknowledged.extend((b["userId"], n + j) for j, b in enumerate(batch))
                n += 20
                stop.wait(0.02)  # about twice what the lane may send: a backlog builds up

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: emulator.requests.total > 2 * KILL_RATE_LIMIT, what="two windows sent")
        wait_until(lambda: _sending(emulator), what="a moment when requests are on their way")
    finally:
        turnout.kill()
        killed_at = time.time()
        stop.set()
        loader.join(timeout=60)
    assert not loader.is_alive()
    sent_before_kill = sum(emulator.requests.sends_by_id.values())

    with TurnoutProcess(config):
        expected = Counter(person for person, _ in acknowledged)
        for person, count in expected.items():

            def caught_up(p: str = person, c: int = count) -> bool:
                return len(_events(emulator, p)) >= c

            wait_until(caught_up, timeout=90, what=f"{count} events of {person}")
    for person in expected:
        numbers = [int(n.split()[1]) for n in _events(emulator, person)]
        acked = sorted(n for p, n in acknowledged if p == person)
        assert set(acked) <= set(numbers), "an acknowledged event is missing"
        assert numbers == sorted(set(numbers)), "order per person was not kept"

    sends = emulator.requests.sends_by_id
    resent = {i for i, n in sends.items() if n > 1}
    extra = sum(sends.values()) - len(sends)
    first_sent: dict[str, float] = {}
    for request in emulator.requests:
        for item in request.body.get("batch", []) if isinstance(request.body, dict) else []:
            first_sent.setdefault(item.get("id"), request.received_at)
    oldest = max((killed_at - first_sent[i] for i in resent), default=0.0)
    print(
        f"{len(acknowledged)} events acknowledged, {sent_before_kill} sends before the kill,"
        f" {len(sends)} distinct ids, {len(resent)} sent twice ({extra} extra sends),"
        f" first sent at most {oldest:.2f} s before the kill"
    )
    assert max(sends.values()) <= 2, "an event was sent more than once after the restart"
    assert extra <= KILL_RATE_LIMIT * KILL_BATCH, f"{extra} extra sends"


def test_an_outage_of_5xx_then_429_is_ridden_out(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    emulator.faults.fail_for(20, status=503)
    for i in range(10):
        turnout.post("/v1/track", {"userId": "o1", "event": f"during 5xx {i}"})
    time.sleep(10)
    emulator.faults.clear()
    emulator.faults.fail_for(10, status=429, retry_after=2)
    for i in range(10):
        turnout.post("/v1/track", {"userId": "o2", "event": f"during 429 {i}"})
    wait_until(lambda: len(_events(emulator, "o1")) == 10, timeout=120, what="the 5xx outage")
    wait_until(lambda: len(_events(emulator, "o2")) == 10, timeout=120, what="the 429 outage")
    assert _events(emulator, "o1") == [f"during 5xx {i}" for i in range(10)]
    metrics = httpx.get(turnout.url + "/metrics").text
    assert 'turnout_delivery_retries_total{connection="cio"}' in metrics


def test_rejected_credentials_pause_then_resume_with_the_backlog(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    emulator.faults.revoke_key()
    for i in range(5):
        turnout.post("/v1/track", {"userId": "c1", "event": f"held {i}"})
    status = wait_until(
        lambda: (s := turnout.api("GET", "/connections/cio").json()["status"])
        and s["state"] == "credentials_rejected"
        and s,
        what="the connection to report rejected credentials",
    )
    assert "credentials rejected" in status["detail"]
    assert _events(emulator, "c1") == []
    emulator.faults.set_credentials(SITE_ID, API_KEY)  # the user fixes the key...
    assert turnout.api("POST", "/connections/cio/resume").status_code == 200  # ...and resumes
    wait_until(lambda: len(_events(emulator, "c1")) == 5, what="the held backlog")
    assert _events(emulator, "c1") == [f"held {i}" for i in range(5)]


def test_permanent_failures_are_dead_lettered_then_replayed(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator, tmp_path: Path
) -> None:
    emulator.faults.fail_next(3, status=400)
    for i in range(3):
        turnout.post("/v1/track", {"userId": f"d{i}", "event": "doomed"})
    letters = wait_until(
        lambda: len(r := turnout.api("GET", "/dead-letters?connection=cio").json()) == 3 and r,
        what="three dead letters",
    )
    assert all("400" in letter["response"] for letter in letters)
    trace = turnout.api("GET", f"/messages/{letters[0]['message_id']}").json()
    assert trace["deliveries"][0]["fate"] == "dead_lettered"

    replay = subprocess.run(
        [sys.executable, "-m", "turnout", "replay", "cio", "--config", str(turnout.config)],
        capture_output=True,
        text=True,
        env=turnout.env,
    )
    assert replay.returncode == 0, replay.stderr
    assert "replaying 3 dead letter(s)" in replay.stdout
    for i in range(3):

        def redelivered(k: int = i) -> bool:
            return _events(emulator, f"d{k}") == ["doomed"]

        wait_until(redelivered, what="replayed letters")
    wait_until(
        lambda: turnout.api("GET", "/dead-letters?connection=cio").json() == [],
        what="the replayed letters to leave the list",
    )
    replayed = turnout.api("GET", f"/messages/{letters[0]['message_id']}").json()
    assert replayed["deliveries"][0]["fate"] == "delivered"  # the record follows the replay


def test_a_message_retried_past_the_retry_window_is_dead_lettered(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    config = write_config(tmp_path, started_url(emulator), extra="retry_window_hours = 0.0005")
    emulator.faults.fail_for(3600, status=503)
    with TurnoutProcess(config) as turnout:
        turnout.post("/v1/track", {"userId": "w1", "event": "never"})
        letters = wait_until(
            lambda: turnout.api("GET", "/dead-letters").json(),
            timeout=30,
            what="the message to give up",
        )
        assert "gave up after" in letters[0]["reason"]


def test_redelivery_from_a_point_in_time_sends_again_with_the_same_dedupe_ids(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    start = time.time() - 1
    for i in range(5):
        turnout.post("/v1/track", {"userId": "r1", "event": f"again {i}"})
    wait_until(lambda: len(_events(emulator, "r1")) == 5, what="first delivery")
    first = _sent_ids(emulator)
    response = turnout.api("POST", "/connections/cio/redeliver", json={"since": start})
    assert response.status_code == 200, response.text
    wait_until(lambda: sum(_sent_ids(emulator).values()) >= 10, what="the re-delivery")
    assert set(_sent_ids(emulator)) == set(first)  # the same ids: Customer.io dedupes them
    assert len(_events(emulator, "r1")) == 5


def test_full_disk_makes_ingest_answer_503_not_lose_data(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    # A free-space floor larger than any disk: the log must refuse, loudly, with Retry-After.
    config = write_config(tmp_path, started_url(emulator))
    config.write_text(config.read_text().replace('sync = "normal"', 'min_free_mb = 1000000000'))
    with TurnoutProcess(config) as turnout:
        response = turnout.post("/v1/track", {"userId": "f1", "event": "refused"})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert response.json()["code"] == "overloaded"


def test_a_paused_connection_keeps_its_backlog_until_resumed_and_trace_shows_the_fate(
    turnout: TurnoutProcess, emulator: CustomerIOEmulator
) -> None:
    assert turnout.api("POST", "/connections/cio/pause").status_code == 200
    response = turnout.post("/v1/track", {"userId": "z1", "event": "waited", "messageId": "m-z1"})
    assert response.status_code == 200
    time.sleep(1.0)
    assert _events(emulator, "z1") == []
    assert turnout.api("POST", "/connections/cio/resume").status_code == 200
    wait_until(lambda: _events(emulator, "z1") == ["waited"], what="the resumed delivery")

    def traced() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "turnout", "trace", "m-z1", "--config", str(turnout.config)],
            capture_output=True,
            text=True,
            env=turnout.env,
        )
        return result.stdout

    output = wait_until(lambda: "delivered" in (out := traced()) and out, what="the trace")
    assert output.startswith("cio: delivered after 1 attempt(s)")
    assert "/api/v2/batch" in output


def test_a_person_with_a_long_queue_neither_stalls_the_lane_nor_loses_order(
    tmp_path: Path, emulator: CustomerIOEmulator
) -> None:
    # Tiny windows: the hot person's backlog must spill to the log and be read back in order.
    config = write_config(
        tmp_path, started_url(emulator), extra="window = 40\nper_person_window = 4"
    )
    with TurnoutProcess(config) as turnout:
        emulator.faults.fail_fraction(0.2, status=503)
        hot = [{"type": "track", "userId": "hot", "event": f"h {i}"} for i in range(60)]
        cold = [{"type": "track", "userId": f"cold{i}", "event": "c"} for i in range(30)]
        assert turnout.post("/v1/batch", {"batch": hot}).status_code == 200
        assert turnout.post("/v1/batch", {"batch": cold}).status_code == 200
        wait_until(
            lambda: all(_events(emulator, f"cold{i}") == ["c"] for i in range(30)),
            timeout=60,
            what="the other people, while the hot person drains",
        )
        names = wait_until(
            lambda: len(n := _events(emulator, "hot")) == 60 and n, timeout=90, what="all 60"
        )
        assert names == [f"h {i}" for i in range(60)]
        emulator.faults.clear()
