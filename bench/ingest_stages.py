"""Where a `/v1/batch` request's time goes, per event, in one thread: the stages the docs quote.

The same 100-event batch `bench/ingest.py` sends, taken through the steps of the tracking API's
batch path, each timed on its own (no HTTP, no log): the UTF-8 check, decoding the envelope and
every item in one pass of msgspec's C decoder, validating and normalising each call, encoding
the stored form, checking the nesting depth; next to the ceiling (the bare app parses the whole
body in one call) and the item-by-item path a batch with any wrong item takes. Each stage is
timed over `--batches` batches, in `--rounds` rounds; the best round is printed, as the one least
disturbed by other work on the machine.

    .venv/bin/python bench/ingest_stages.py
    .venv/bin/python bench/ingest_stages.py --batches 5000 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ingest import BATCH_BODY, EVENTS_PER_BATCH
from turnout.spec.incoming import (
    Incoming,
    any_too_deep,
    check_utf8,
    decode_batch,
    decode_call,
    decode_calls,
)
from turnout.spec.normalise import RequestFacts, normalise, now

BODY = BATCH_BODY.encode()
encode = msgspec.json.Encoder().encode


def facts_for(envelope: Any) -> RequestFacts:
    """What the tracking API knows of one request (fresh per request, as in the server)."""
    facts = RequestFacts(received_at=now(), ip="203.0.113.7")
    facts.sent_at, facts.context, facts.integrations = (
        envelope.sent_at,
        envelope.context,
        envelope.integrations,
    )
    if envelope.sent_at is not None:
        facts.sent_moment(envelope.sent_at)
    return facts


def fresh_calls() -> tuple[RequestFacts, list[Incoming]]:
    """A request's decoded, not yet normalised calls: normalising fills them in place, once."""
    envelope = decode_batch(BODY)
    calls = decode_calls(envelope.batch)
    assert calls is not None
    return facts_for(envelope), calls


def timed(step: Callable[[], object], times: int = 1) -> float:
    """Seconds for `times` runs of `step`, each result dropped at once (as a server does)."""
    started = time.perf_counter()
    for _ in range(times):
        step()
    return time.perf_counter() - started


def one_round(batches: int) -> dict[str, float]:
    """Seconds per event of each stage, over `batches` batches."""
    envelope = decode_batch(BODY)
    items = envelope.batch
    facts, normalised = fresh_calls()
    for call in normalised:
        normalise(call, facts, "web", None)
    payloads = [encode(call) for call in normalised]

    def normalise_all() -> float:
        """Only the normalising is timed; each batch is decoded afresh beforehand."""
        spent = 0.0
        for _ in range(batches):
            facts, calls = fresh_calls()
            started = time.perf_counter()
            for call in calls:
                normalise(call, facts, "web", None)
            spent += time.perf_counter() - started
        return spent

    def item_by_item() -> None:
        for _ in range(batches):
            facts = facts_for(decode_batch(BODY))
            for item in items:
                encode(normalise(decode_call(item), facts, "web", None))

    seconds = {
        "ceiling: parse the whole body": timed(lambda: msgspec.json.decode(BODY), batches),
        "utf-8 check": timed(lambda: check_utf8(BODY), batches),
        "decode the envelope": timed(lambda: decode_batch(BODY), batches),
        "decode the items": timed(lambda: decode_calls(items), batches),
        "validate and normalise": normalise_all(),
        "encode the stored form": timed(lambda: list(map(encode, normalised)), batches),
        "check nesting depth": timed(lambda: any_too_deep(payloads), batches),
        "item by item (a batch with a wrong item)": timed(item_by_item),
    }
    return {stage: s / (batches * EVENTS_PER_BATCH) for stage, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [one_round(args.batches) for _ in range(args.rounds)]
    best = {stage: min(r[stage] for r in rounds) for stage in rounds[0]}
    print(
        f"per event, best of {args.rounds} rounds of {args.batches:,} batches of"
        f" {EVENTS_PER_BATCH} (load average {os.getloadavg()[0]:.2f}):"
    )
    fast_path = [
        "utf-8 check",
        "decode the envelope",
        "decode the items",
        "validate and normalise",
        "encode the stored form",
        "check nesting depth",
    ]
    for stage, value in best.items():
        print(f"  {stage:<42} {value * 1e6:5.2f} µs")
    total = sum(best[stage] for stage in fast_path)
    print(f"  {'batch path in all (the stages above it)':<42} {total * 1e6:5.2f} µs")


if __name__ == "__main__":
    main()
