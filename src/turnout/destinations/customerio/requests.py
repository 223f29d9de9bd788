"""Operations to HTTP requests, within Customer.io's limits.

v2 (the default) packs operations into `/api/v2/batch` bodies of at most `batch_size` items and
`V2_BATCH_MAX_BYTES`; an operation v2 cannot carry (an anonymous event, or an event whose item would
exceed `V2_ITEM_MAX_BYTES`) goes as its own v1 request. v1 sends one request per operation;
objects, which only v2 knows, go to `/api/v2/entity`.

The list returned is in an order that keeps every person's operations in their original order:
the client may run requests concurrently, but never a request before an earlier one that shares
a key (a person or object) with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from turnout.destinations.customerio import limits
from turnout.destinations.customerio.operations import Operation
from turnout.destinations.customerio.values import json_bytes

BATCH_PATH = "/api/v2/batch"
ENTITY_PATH = "/api/v2/entity"

_BATCH_OPEN = b'{"batch":['
_BATCH_CLOSE = b"]}"

RequestKind = Literal["v1", "v2_batch", "v2_entity"]


@dataclass(slots=True)
class HttpRequest:
    """One HTTP request and the operations (by index into the `send` call) it carries."""

    kind: RequestKind
    method: str
    path: str
    operations: list[int]
    # The JSON of each carried operation as sent (a batch item, or the v1/entity body).
    parts: list[bytes]
    keys: set[str] = field(default_factory=set)

    @property
    def body(self) -> bytes | None:
        if self.kind == "v2_batch":
            return _BATCH_OPEN + b",".join(self.parts) + _BATCH_CLOSE
        return self.parts[0] if self.parts and self.parts[0] else None

    def select(self, positions: Sequence[int]) -> HttpRequest:
        """The same request carrying only the operations at `positions` (part of a batch that
        Customer.io refused as a whole, re-sent to isolate the item it is about)."""
        return HttpRequest(
            self.kind,
            self.method,
            self.path,
            [self.operations[p] for p in positions],
            [self.parts[p] for p in positions],
            set(self.keys),
        )


def batch_body_size(item_sizes: Sequence[int]) -> int:
    """Bytes of a `{"batch":[...]}` body holding items of these sizes."""
    commas = max(len(item_sizes) - 1, 0)
    return len(_BATCH_OPEN) + sum(item_sizes) + commas + len(_BATCH_CLOSE)


def build_requests(
    operations: Sequence[Operation], api: Literal["v2", "v1"], batch_size: int
) -> list[HttpRequest]:
    """The requests that carry `operations`, each operation in exactly one request."""
    if api == "v1":
        return [_single(index, op) for index, op in enumerate(operations)]
    requests: list[HttpRequest] = []
    batch: HttpRequest | None = None
    size = 0
    for index, op in enumerate(operations):
        item = op.v2_item()
        encoded = json_bytes(item) if item is not None else b""
        if item is None or len(encoded) > limits.V2_ITEM_MAX_BYTES:
            single = _single(index, op)
            if batch is not None and batch.keys & single.keys:
                # The batch holds an earlier operation of the same person: it goes first.
                requests.append(batch)
                batch = None
            requests.append(single)
            continue
        grown = size + len(encoded) + 1
        if batch is not None and (
            len(batch.operations) >= batch_size or grown > limits.V2_BATCH_MAX_BYTES
        ):
            requests.append(batch)
            batch = None
        if batch is None:
            batch = HttpRequest("v2_batch", "POST", BATCH_PATH, [], [])
            size = len(_BATCH_OPEN) + len(_BATCH_CLOSE) - 1  # the first item has no comma
            grown = size + len(encoded) + 1
        batch.operations.append(index)
        batch.parts.append(encoded)
        batch.keys.update(op.keys)
        size = grown
    if batch is not None:
        requests.append(batch)
    return requests


def _single(index: int, op: Operation) -> HttpRequest:
    """One operation in one request: its v1 form, or `/api/v2/entity` when only v2 has it."""
    v1 = op.v1_request()
    if v1 is not None:
        body = json_bytes(v1.body) if v1.body is not None else b""
        return HttpRequest("v1", v1.method, v1.path, [index], [body], set(op.keys))
    item = op.v2_item()
    return HttpRequest("v2_entity", "POST", ENTITY_PATH, [index], [json_bytes(item)], set(op.keys))
