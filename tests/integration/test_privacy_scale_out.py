"""Privacy requests when several Turnout processes share NATS JetStream and PostgreSQL.

A request may be made of any process, while the people it names are delivered by others (each
partition of the log is delivered by one process): every step still reaches its outcome, the
people's calls leave the JetStream stream and their records leave PostgreSQL (searched in the
raw bytes of every table and every stored message), Customer.io deletes them, and everyone
else's calls go on. A suppressed person's later calls never reach Customer.io, whichever
process takes them in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from cluster import PARTITIONS, Cluster, owned_partitions, shared_evenly
from services import POSTGRES_URL, require_nats
from support import TurnoutProcess, wait_until
from turnout.emulators.customerio import CustomerIOEmulator
from turnout.log.partitions import partition_of

pytestmark = pytest.mark.services

# Where the NATS server keeps its files, when it runs on this machine: the stream's files are
# then searched too (the stored messages are read back through JetStream in any case).
NATS_STORE_DIR = os.environ.get("TURNOUT_TEST_NATS_STORE_DIR", "")


def _three(cluster: Cluster) -> tuple[TurnoutProcess, TurnoutProcess, TurnoutProcess]:
    """An ingest-only process (it delivers nothing) and two that share the partitions."""
    front = cluster.process("front", "ingest")
    one = cluster.process("one", "all")
    two = cluster.process("two", "deliver")
    wait_until(lambda: shared_evenly(one, two), timeout=60, what="the partitions shared")
    return front, one, two


def _people(prefix: str, partitions: set[int], count: int) -> list[str]:
    """`count` ids whose calls fall in these partitions (none a part of another's id)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"{prefix}{n}-Qz"
        if partition_of(candidate, PARTITIONS) in partitions:
            found.append(candidate)
        n += 1
    return found


def _events(emulator: CustomerIOEmulator, person: str) -> list[str]:
    found = emulator.state.person(person)
    return [a.name for a in found.activity if a.type == "event"] if found else []


def _wait_events(emulator: CustomerIOEmulator, person: str, expected: list[str]) -> None:
    wait_until(
        lambda: _events(emulator, person) == expected,
        timeout=60,
        what=f"{person}'s calls {expected} at Customer.io",
    )


def _wait_event(emulator: CustomerIOEmulator, person: str, event: str) -> None:
    wait_until(lambda: event in _events(emulator, person), timeout=60, what=f"{person}: {event}")


def _finished(process: TurnoutProcess, request_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = process.api("GET", f"/privacy/requests/{request_id}").json()
        return view if view["status"] != "pending" else None

    result: dict[str, Any] = wait_until(done, timeout=60, what="the privacy request to finish")
    return result


def _request(process: TurnoutProcess, body: dict[str, Any]) -> dict[str, Any]:
    answer = process.api("POST", "/privacy/requests", json=body)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _table_bytes(schema: str) -> dict[str, bytes]:
    """Every row of every table of the schema, as PostgreSQL writes them out (COPY)."""
    import psycopg

    tables: dict[str, bytes] = {}
    with psycopg.connect(POSTGRES_URL) as conn:
        names = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        for (name,) in names:
            with conn.cursor() as cursor:
                copied = bytearray()
                with cursor.copy(f'COPY "{schema}"."{name}" TO STDOUT') as copy:
                    for chunk in copy:
                        copied += chunk
                tables[str(name)] = bytes(copied)
    return tables


def _tables_holding(schema: str, needle: str) -> list[str]:
    """The tables whose rows hold `needle`, as text or inside a bytea (written as hex)."""
    raw, hexed = needle.encode(), needle.encode().hex().encode()
    return sorted(
        name for name, data in _table_bytes(schema).items() if raw in data or hexed in data
    )


def _stored_messages(stream: str) -> list[bytes]:
    """Every message JetStream holds in the log's stream and in its key-value buckets: subject,
    headers and body of each, read back by sequence."""
    return asyncio.run(_read_streams(stream))


async def _read_streams(stream: str) -> list[bytes]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(require_nats())
    js = nc.jetstream()
    found: list[bytes] = []
    try:
        names = [
            info.config.name
            for info in await js.streams_info()
            if info.config.name == stream or (info.config.name or "").startswith(f"KV_{stream}-")
        ]
        assert stream in names
        for name in names:
            assert name is not None
            state = (await js.stream_info(name)).state
            for seq in range(max(state.first_seq, 1), state.last_seq + 1):
                try:
                    raw = await js.get_msg(name, seq)
                except NotFoundError:
                    continue  # erased, or trimmed
                headers = repr(raw.headers).encode()
                found.append((raw.subject or "").encode() + headers + (raw.data or b""))
    finally:
        await nc.close()
    return found


def _messages_holding(stream: str, needle: str) -> int:
    return sum(needle.encode() in message for message in _stored_messages(stream))


def _files_holding(stream: str, needle: str) -> list[str]:
    """The NATS server's files of this stream (and its buckets) that hold `needle`."""
    root = Path(NATS_STORE_DIR)
    return sorted(
        str(path)
        for path in root.rglob("*")
        if path.is_file()
        and any(part == stream or part.startswith(f"KV_{stream}-") for part in path.parts)
        and needle.encode() in path.read_bytes()
    )


def test_a_deletion_made_on_one_process_is_done_by_all_and_leaves_no_trace(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    front, one, two = _three(cluster)
    # One person delivered by each process, so both have their part to do; the request is made
    # of the process that delivers nothing.
    gone = _people("gone", owned_partitions(one), 1) + _people("gone", owned_partitions(two), 1)
    kept = _people("kept", owned_partitions(one), 1) + _people("kept", owned_partitions(two), 1)
    for person in gone + kept:
        front.post("/v1/identify", {"userId": person, "traits": {"email": f"{person}@x.io"}})
        one.post("/v1/track", {"userId": person, "event": "Viewed 1"})
        front.post("/v1/track", {"userId": person, "event": "Viewed 2"})
    for person in gone:
        # Dead-lettered (a trait over Customer.io's limit), and refused at ingest (kept with
        # its body): both name the person.
        blob = {"userId": person, "traits": {"blob": ["x" * 1200]}}
        assert one.post("/v1/identify", blob).status_code == 200
        refused = front.post("/v1/track", {"userId": person, "event": "x", "timestamp": "bad"})
        assert refused.status_code == 400
    for person in gone + kept:
        _wait_events(emulator, person, ["Viewed 1", "Viewed 2"])

    def records(person: str) -> list[str]:
        trace = one.api("GET", "/people", params={"user_id": person}).json()
        return sorted(d["fate"] for c in trace["calls"] for d in c["deliveries"])

    def recorded() -> bool:  # fates reach PostgreSQL a moment after Customer.io answers
        return all(len(records(p)) == 4 for p in gone)

    wait_until(recorded, timeout=30, what="four records of each person to delete")
    letters = one.api("GET", "/dead-letters?connection=cio").json()
    assert sorted(letter["person"] for letter in letters) == sorted(gone)
    deliveries = sum(len(records(p)) for p in gone)
    for person in gone:  # the searches below find what is there
        assert _tables_holding(cluster.schema, person) == ["dead_letters", "deliveries", "rejects"]
        assert _messages_holding(cluster.stream, person) == 4
        if NATS_STORE_DIR:  # the server writes its files a moment after acknowledging
            wait_until(
                functools.partial(_files_holding, cluster.stream, person),
                what=f"{person}'s calls in the NATS server's files",
            )

    request = _request(front, {"action": "delete", "user_ids": gone})
    assert request["status"] == "pending"
    done = _finished(front, request["id"])
    assert done["status"] == "done", done
    assert done["ids_stored_as"] == "hashed"
    steps = {s["name"]: (s["status"], s["count"], s["detail"]) for s in done["steps"]}
    store_detail = f"deliveries: {deliveries}, dead_letters: 2, rejects: 2"
    assert steps == {
        "log": ("done", 8, ""),
        "store": ("done", deliveries + 4, store_detail),
    }
    assert [(c["name"], c["destination"], c["count"]) for c in done["connections"]] == [
        ("cio", "done", 2)
    ]
    for process in (one, two):  # every process reads the same outcome
        view = process.api("GET", f"/privacy/requests/{request['id']}").json()
        assert (view["status"], view["steps"]) == (done["status"], done["steps"])

    for person in gone:
        assert emulator.state.person(person) is None  # Customer.io deleted them
        assert _tables_holding(cluster.schema, person) == []
        assert _messages_holding(cluster.stream, person) == 0
        if NATS_STORE_DIR:
            assert _files_holding(cluster.stream, person) == []
        assert one.api("GET", "/people", params={"user_id": person}).json()["calls"] == []
    for person in kept:
        assert _messages_holding(cluster.stream, person) == 3
        assert _tables_holding(cluster.schema, person) == ["deliveries"]

    # Everyone else's calls go on, through both processes that take calls.
    for person in kept:
        front.post("/v1/track", {"userId": person, "event": "Viewed 3"})
        one.post("/v1/track", {"userId": person, "event": "Viewed 4"})
    for person in kept:
        _wait_events(emulator, person, [f"Viewed {n}" for n in range(1, 5)])


def test_a_suppressed_persons_later_calls_never_reach_customerio(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    front, one, two = _three(cluster)
    # Delivered by `two`, suppressed through `one`, later calls through both that take calls.
    hushed = _people("hush", owned_partitions(two), 1)[0]
    same = _people("near", {partition_of(hushed, PARTITIONS)}, 1)[0]
    one.post("/v1/track", {"userId": hushed, "event": "Before"})
    _wait_events(emulator, hushed, ["Before"])

    request = _request(one, {"action": "suppress", "user_ids": [hushed]})
    done = _finished(one, request["id"])
    assert done["status"] == "done"
    assert [(c["name"], c["destination"], c["count"]) for c in done["connections"]] == [
        ("cio", "done", 1)
    ]
    assert emulator.state.person(hushed) is None  # Customer.io suppressed (and deleted) them

    for number, process in enumerate((front, one)):
        later = {"userId": hushed, "event": f"Later {number}"}
        assert process.post("/v1/track", later).json() == {"success": True}
        # A call of someone in the same partition, after it: once it arrives, the lane
        # delivering that partition has dealt with the suppressed call before it.
        mark = {"userId": same, "event": f"After {number}"}
        assert process.post("/v1/track", mark).status_code == 200
        _wait_event(emulator, same, f"After {number}")
    batch = {
        "batch": [
            {"type": "track", "userId": hushed, "event": "Later batch"},
            {"type": "track", "userId": same, "event": "After batch"},
        ]
    }
    assert front.post("/v1/batch", batch).json() == {"success": True}
    _wait_event(emulator, same, "After batch")

    assert emulator.state.person(hushed) is None
    sent = [str(r.body) for r in emulator.requests]
    assert not [body for body in sent if "Later" in body]
    assert _events(emulator, same) == ["After 0", "After 1", "After batch"]


def test_a_deletion_made_while_no_process_delivers_is_done_by_the_next_one(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    """Its parts wait in PostgreSQL; the delivery process started afterwards takes every
    partition, and with them the parts: it erases and tells Customer.io."""
    first = cluster.process("first", "all")
    gone, kept = "late0-Qz", "late1-Qz"
    for person in (gone, kept):
        first.post("/v1/track", {"userId": person, "event": "Seen"})
    for person in (gone, kept):
        _wait_events(emulator, person, ["Seen"])
    first.stop()

    ingest = cluster.process("ingest", "ingest")
    request = _request(ingest, {"action": "delete", "user_ids": [gone]})
    assert [(s["name"], s["status"]) for s in request["steps"]] == [
        ("log", "pending"),
        ("store", "pending"),
    ]
    assert _messages_holding(cluster.stream, gone) == 1

    cluster.process("deliver", "deliver")
    done = _finished(ingest, request["id"])
    assert done["status"] == "done"
    assert {s["name"]: (s["status"], s["count"]) for s in done["steps"]} == {
        "log": ("done", 1),
        "store": ("done", 1),
    }
    assert [(c["name"], c["destination"], c["count"]) for c in done["connections"]] == [
        ("cio", "done", 1)
    ]
    assert emulator.state.person(gone) is None
    assert _messages_holding(cluster.stream, gone) == 0
    assert _tables_holding(cluster.schema, gone) == []
    assert _messages_holding(cluster.stream, kept) == 1


def test_a_deletion_whose_delivering_process_dies_is_finished_by_the_one_taking_over(
    cluster: Cluster, emulator: CustomerIOEmulator
) -> None:
    """The process delivering the person's partition is killed (kill -9) while Customer.io
    holds the deletion it sent; the process that takes the partition over tells Customer.io
    again (deleting twice is harmless), and the request finishes with nothing of them left."""
    front, one, two = _three(cluster)
    person = _people("moved", owned_partitions(two), 1)[0]
    front.post("/v1/identify", {"userId": person, "traits": {"email": f"{person}@x.io"}})
    front.post("/v1/track", {"userId": person, "event": "Seen"})
    _wait_events(emulator, person, ["Seen"])

    emulator.faults.hang_next(1, seconds=20)  # the next request: the deletion, held unanswered
    request = _request(front, {"action": "delete", "user_ids": [person]})
    wait_until(lambda: not emulator.faults.active, timeout=30, what="the deletion in flight")
    two.kill()
    wait_until(
        lambda: owned_partitions(one) == set(range(PARTITIONS)),
        timeout=60,
        what="the partitions taken over",
    )

    done = _finished(front, request["id"])
    assert done["status"] == "done", done
    assert {s["name"]: s["status"] for s in done["steps"]} == {"log": "done", "store": "done"}
    assert [(c["name"], c["destination"], c["count"]) for c in done["connections"]] == [
        ("cio", "done", 1)
    ]
    assert emulator.state.person(person) is None
    assert _tables_holding(cluster.schema, person) == []
    assert _messages_holding(cluster.stream, person) == 0
    deletions = [
        r for r in emulator.requests
        if person in json.dumps(r.body) and '"action": "delete"' in json.dumps(r.body)
    ]  # fmt: skip
    assert [r.fault for r in deletions] == ["hang", None]  # held at `two`, sent again by `one`
    assert deletions[-1].status == 200
