"""Playbook cost: messages/s through a realistic playbook plus the Customer.io mapping, against the
mapping alone, in the same run (one process, one core, no I/O: the CPU a lane spends per message).

The playbook has ten rules of the kinds the cookbook in docs/playbooks.md shows (drop test and
internal traffic, hash and remove PII, rename e-commerce events, rename traits, add a constant,
remove internal properties, sample a noisy event, an allowlist of traits) and needs `marketing`
consent, which every message grants. No rule drops a message of the workload, so every message
is mapped in both runs and the ratio is the cost of shaping alone. Per message, the shaped path
is what a lane does, `delivery.shaping.map_shaped`: `Playbook.shape`, which hands back the
typed `Message` (the changed fields replaced in a copy), then the destination's `map`; without
a playbook a lane calls the destination's `map` alone. No pass/fail: it prints figures.

Two ways of handing the messages over, each printed: as a lane meets them (a lane decodes each
stored call just before it shapes and maps it, so the call is in the processor's caches; here
each batch of 100 is decoded just before, untimed), and all decoded beforehand (then most are
out of the caches, and whichever step reads a part of a call first pays for fetching it: the
playbook reads `context` for consent, which the mapping of a track call never reads). The
runs take turns batch by batch (100 calls each, every run on its own copy of the batch, the
order turning from batch to batch), so a slow spell of the shared machine, or a cache warmed by
the run before, favours none of them; each round over all the calls gives one ratio, and the
medians are printed.

    .venv/bin/python bench/playbook.py                  # 20,000 messages, 7 rounds
    .venv/bin/python bench/playbook.py --messages 50000 --rounds 3
    .venv/bin/python bench/playbook.py --profile        # cProfile of the shaped path, top 25
    .venv/bin/python bench/playbook.py --only shaped    # one side once, as a lane meets the
                                                        # calls, for a timer or profiler outside
                                                        # (`--only none`: the setup alone)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from turnout.delivery.shaping import map_shaped
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.destinations.registry import get
from turnout.playbooks import Playbook
from turnout.spec.message import Message, decode, encode

CUSTOMERIO = get("customerio")
SETTINGS = CustomerIOSettings(site_id="bench-site", api_key="bench-key")

RULES: list[dict[str, Any]] = [
    {"name": "no test events", "when": 'type = "track" and event = "Test Event"', "drop": True},
    {"name": "no internal traffic", "drop": True,
     "when": 'match(context.page.url, "https://staging.*") or '
             'contains(traits.email, "@acme.test")'},
    {"name": "no PII", "when": 'type = "identify"', "remove": ["traits.ssn", "context.ip"],
     "transform": {"traits.email": ["trim", "lower"]}},
    {"when": "exists(traits.phone)", "transform": {"traits.phone": "sha256"}},
    {"when": 'type = "track" and event = "Order Completed"', "rename_event": "purchase",
     "copy": {"properties.revenue": "properties.total"}, "set": {"properties.currency": "USD"}},
    {"when": 'type = "identify"',
     "move": {"traits.first_name": "traits.firstName", "traits.last_name": "traits.lastName"}},
    {"set": {"context.app.environment": "production"}},
    {"when": 'type = "track"', "remove": ["properties.internal_*"]},
    {"name": "fewer scrolls", "when": 'event = "Scroll Depth"', "sample": 0.1},
    {"when": 'type = "identify"',
     "keep": {"traits": ["email", "first_name", "last_name", "plan", "phone", "created_at"]}},
]  # fmt: skip


def _context(i: int) -> dict[str, Any]:
    return {
        "library": {"name": "analytics.js", "version": "next-1.84.3"},
        "page": {
            "path": "/products/p",
            "url": f"https://shop.example.com/products/p-{i % 97}",
            "title": "Product",
            "referrer": "https://www.google.com/",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
        "locale": "en-GB",
        "ip": "203.0.113.7",
        "consent": {"categoryPreferences": {"marketing": True, "analytics": True}},
    }


def _message(i: int) -> Message:
    """A realistic mix: 60% product views, 15% orders, 15% identifies, 10% pages."""
    base: dict[str, Any] = {
        "messageId": f"ajs-next-{i:08d}-3f9e7c1a2b4d5e6f",
        "receivedAt": "2026-11-28T10:00:00.123Z",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "userId": f"user-{i % 5000}",
        "anonymousId": f"0b8e4b5c-5b1f-4d7e-9a3b-{i % 5000:012d}",
        "context": _context(i),
        "source": "web",
    }
    kind = i % 20
    if kind < 12:
        base |= {"type": "track", "event": "Product Viewed", "properties": {
            "product_id": f"p-{i % 97}", "price": 19.99, "currency": "EUR", "internal_rank": 3}}
    elif kind < 15:
        base |= {"type": "track", "event": "Order Completed", "properties": {
            "order_id": f"o-{i}", "total": 59.97, "products": [{"product_id": "p-1"}]}}
    elif kind < 18:
        base |= {"type": "identify", "traits": {
            "email": f" User{i}@Example.com ", "firstName": "Ada", "lastName": "Lovelace",
            "plan": "pro", "phone": "+44 20 7946 0000", "ssn": "000-00-0000",
            "createdAt": "2024-01-01T00:00:00Z", "favourite_colour": "green"}}
    else:
        base |= {"type": "page", "name": "Product", "properties": {"path": "/products/p"}}
    return msgspec.convert(base, Message)


Run = Callable[[list[Message]], int]


def plain(messages: list[Message]) -> int:
    """What a lane without a playbook does with each call."""
    operations = 0
    for message in messages:
        operations += len(CUSTOMERIO.map(message, SETTINGS).operations)
    return operations


def shaped(playbook: Playbook) -> Run:
    """What a lane with a playbook does with each call (`map_shaped`)."""

    def run(messages: list[Message]) -> int:
        operations = 0
        for message in messages:
            result, _ = map_shaped(playbook, CUSTOMERIO, SETTINGS, message)
            operations += len(result.operations)
        return operations

    return run


BATCH = 100
Batches = Callable[[], Iterator[list[list[Message]]]]


def lane_batches(stored: list[bytes], copies: int) -> Batches:
    """The stored calls as a lane meets them: each batch decoded from its bytes (once per run,
    untimed) just before it is shaped and mapped, so it is in the processor's caches."""

    def batches() -> Iterator[list[list[Message]]]:
        for first in range(0, len(stored), BATCH):
            payloads = stored[first : first + BATCH]
            yield [[decode(payload) for payload in payloads] for _ in range(copies)]

    return batches


def cold_batches(stored: list[bytes], copies: int) -> Batches:
    """The calls decoded long before (once per run): most of them are out of the processor's
    caches by the time they are read, a harsher case than a lane's."""
    decoded = [[decode(payload) for payload in stored] for _ in range(copies)]

    def batches() -> Iterator[list[list[Message]]]:
        for first in range(0, len(stored), BATCH):
            yield [calls[first : first + BATCH] for calls in decoded]

    return batches


def one_round(runs: list[Run], batches: Batches) -> list[float]:
    """CPU seconds each run spends over all the calls, taking turns batch by batch."""
    spent = [0.0] * len(runs)
    for number, copies in enumerate(batches()):
        for turn in range(len(runs)):
            index = (number + turn) % len(runs)
            start = time.process_time()  # CPU time: other processes on the machine do not count
            runs[index](copies[index])
            spent[index] += time.process_time() - start
    return spent


def compare(name: str, batches: Callable[[int], Batches], runs: dict[str, Run], rounds: int,
            count: int) -> None:  # fmt: skip
    """Rounds of the runs, the mapping alone first among them; per round the ratio of the
    shaped run's rate to the mapping's. Prints medians."""
    runs = {"Customer.io mapping alone": plain, **runs}
    feed = batches(len(runs))
    rates: dict[str, list[float]] = {each: [] for each in runs}
    ratios = []
    for _ in range(rounds):
        seconds = dict(zip(runs, one_round(list(runs.values()), feed), strict=True))
        for each, spent in seconds.items():
            rates[each].append(count / spent)
        ratios.append(seconds["Customer.io mapping alone"]
                      / seconds["playbook + Customer.io mapping"])  # fmt: skip
    print(f"  {name}")
    for each in runs:
        print(f"    {each:<34} {statistics.median(rates[each]):>10,.0f} messages/s")
    print(f"    {'ratio (playbook + mapping / mapping)':<34} {statistics.median(ratios):>10.2f}"
          f"   (rounds: {min(ratios):.2f} to {max(ratios):.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", choices=["plain", "shaped", "none"])
    args = parser.parse_args()

    messages = [_message(i) for i in range(args.messages)]
    stored = [encode(message) for message in messages]
    playbook = Playbook.compile(RULES, consent=["marketing"], consent_missing="drop")
    with_playbook = shaped(playbook)
    # Same work in both: every message maps to operations (nothing of the mix is dropped).
    assert plain(messages[:200]) == with_playbook(messages[:200]) > 0
    if args.only is not None:
        run = {"plain": plain, "shaped": with_playbook, "none": lambda batch: 0}[args.only]
        for [batch] in lane_batches(stored, 1)():
            run(batch)
        return
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(with_playbook, messages)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return
    print(f"{len(messages):,} messages, {len(RULES)}-rule playbook + consent, medians of "
          f"{args.rounds} rounds")  # fmt: skip
    compare(
        "as a lane meets them (each batch of 100 decoded just before)",
        lambda copies: lane_batches(stored, copies),
        {"playbook + Customer.io mapping": with_playbook},
        args.rounds,
        len(stored),
    )
    compare(
        f"decoded beforehand (all {len(messages):,}, mostly out of the caches)",
        lambda copies: cold_batches(stored, copies),
        {
            "playbook + Customer.io mapping": with_playbook,
            "playbook alone (shape)": lambda batch: sum(
                len(playbook.shape(m).messages) for m in batch
            ),
        },
        args.rounds,
        len(stored),
    )

if __name__ == "__main__":
    main()
