"""Deleting people's data from Turnout's own copies: the log, and the store's records of them.

What holds a person's data, and how each copy is found:
- the log: their calls, by person key (userId, or anonymousId for calls without one);
- delivery records and dead letters: by the same person key (their `person` column);
- rejects (calls refused at ingest, kept with their raw body): by the id appearing as a JSON
  string anywhere in the body, since a refused call was never given a person key.
A log that cannot erase (see `ErasableLog`) is reported as such, never skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from turnout.privacy.records import Runner

IDS_PER_STATEMENT = 500  # person keys per `IN (...)` (SQLite allows 32,766 parameters)


@runtime_checkable
class ErasableLog(Protocol):
    async def erase_persons(self, persons: set[str], upto: int) -> int: ...


@runtime_checkable
class Scrubbable(Protocol):
    async def scrub(self) -> bool: ...


class NotErasable(Exception):
    """This log backend cannot delete single messages (yet)."""


async def erase_log(log: Any, persons: set[str], upto: int) -> int:
    """Remove the persons' calls at offsets <= `upto` from the log; the count removed."""
    if not isinstance(log, ErasableLog):
        raise NotErasable(
            f"the {type(log).__name__} log cannot delete single calls; they leave it with retention"
        )
    erased = await log.erase_persons(persons, upto)
    if isinstance(log, Scrubbable) and not await log.scrub():
        raise RuntimeError("the log's WAL stayed busy: its old pages could not be emptied")
    return erased


async def erase_store(store: Runner, persons: Sequence[str], ids: Sequence[str]) -> dict[str, int]:
    """Delete the persons' delivery records, dead letters and rejects; the count per table."""
    removed = {"deliveries": 0, "dead_letters": 0, "rejects": 0}
    statements: list[tuple[str, list[Sequence[Any]]]] = []
    for start in range(0, len(persons), IDS_PER_STATEMENT):
        part = list(persons[start : start + IDS_PER_STATEMENT])
        marks = ", ".join("?" * len(part))
        for table in ("deliveries", "dead_letters"):
            rows = await store._read(
                f"SELECT COUNT(*) FROM {table} WHERE person IN ({marks})", part
            )
            removed[table] += int(rows[0][0])
            statements.append((f"DELETE FROM {table} WHERE person IN ({marks})", [part]))
    patterns: list[Sequence[Any]] = []
    for value in dict.fromkeys(ids):
        pattern = _like(json.dumps(value, ensure_ascii=False))
        rows = await store._read(
            "SELECT COUNT(*) FROM rejects WHERE payload LIKE ? ESCAPE '\\'", (pattern,)
        )
        removed["rejects"] += int(rows[0][0])
        patterns.append((pattern,))
    statements.append(("DELETE FROM rejects WHERE payload LIKE ? ESCAPE '\\'", patterns))
    await store._many(statements)
    if isinstance(store, Scrubbable) and not await store.scrub():
        raise RuntimeError("the store's WAL stayed busy: its old pages could not be emptied")
    return removed


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
