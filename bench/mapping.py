"""Customer.io mapping cost: microseconds per message for `map_message` alone, and for
`map_message` followed by `build_requests` (the request bodies a lane sends), on a mix of
identify calls with many and nested traits, group calls and tracked events. One process, one
core, no I/O. No pass/fail: it prints figures.

    .venv/bin/python bench/mapping.py                  # 20,000 messages, best of 5 rounds
    .venv/bin/python bench/mapping.py --messages 50000 --rounds 3

To compare two versions of the code in the same run, run it once per source tree:
`PYTHONPATH=<other checkout>/src .venv/bin/python bench/mapping.py`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from turnout.destinations.customerio.mapping import map_message
from turnout.destinations.customerio.requests import build_requests
from turnout.destinations.customerio.settings import CustomerIOSettings
from turnout.spec.message import Message

SETTINGS = CustomerIOSettings(site_id="bench-site", api_key="bench-key")
TS = "2024-05-01T12:34:56.789Z"


def _traits(i: int) -> dict[str, Any]:
    traits: dict[str, Any] = {
        "email": f"person-{i}@example.com",
        "plan": "pro",
        "createdAt": "2023-01-15T09:30:00Z",
        "last_seen": TS,
        "address": {"street": "1 Main St", "city": "Lyon", "zip": "69001", "country": "FR"},
        "tags": ["beta", "newsletter", f"cohort-{i % 12}"],
        "bio": "x" * 600,
    }
    traits.update({f"score_{n}": n * i for n in range(30)})
    return traits


def _message(i: int) -> Message:
    common: dict[str, Any] = {
        "message_id": f"m-{i}",
        "received_at": TS,
        "timestamp": TS,
        "anonymous_id": f"anon-{i}",
    }
    kind = i % 4
    if kind == 0:
        return Message(type="identify", user_id=f"u{i}", traits=_traits(i), **common)
    if kind == 1:
        group_traits = {"name": "Acme", "industry": "retail", "employees": 120, **_traits(i)}
        return Message(type="group", user_id=f"u{i}", group_id=f"g{i % 50}", traits=group_traits,
                       **common)  # fmt: skip
    properties = {"total": 19.5, "items": [{"sku": "a", "qty": 1}], "at": TS, "note": "y" * 300}
    return Message(type="track", user_id=f"u{i}", event="Order Completed", properties=properties,
                   **common)  # fmt: skip


def _best(rounds: int, messages: list[Message], work: Callable[[Message], object]) -> float:
    """Best microseconds per message over `rounds` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for message in messages:
            work(message)
        best = min(best, time.perf_counter() - start)
    return best / len(messages) * 1e6


def _map_and_build(message: Message) -> object:
    result = map_message(message, SETTINGS)
    return build_requests(result.operations, SETTINGS.api, SETTINGS.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    messages = [_message(i) for i in range(args.messages)]
    for message in messages:  # warm up (imports, caches) so the first figure is not penalised
        _map_and_build(message)
    mapped = _best(args.rounds, messages, lambda m: map_message(m, SETTINGS))
    built = _best(args.rounds, messages, _map_and_build)
    print(f"messages: {args.messages} (identify, group, 2x track), best of {args.rounds} rounds")
    print(f"map_message:                  {mapped:7.1f} us/message")
    print(f"map_message + build_requests: {built:7.1f} us/message")


if __name__ == "__main__":
    main()
