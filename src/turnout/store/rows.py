"""Between the store's models and the rows both backends keep, in one place.

Why a module of its own: SQLite and PostgreSQL store the same columns in the same order, so how a
model becomes statement parameters, and how a fetched row becomes a model, is one piece of code
whichever database answered. Only the drivers' small differences are smoothed over here (a BYTEA
may arrive as a memoryview, a SQLite boolean as 0/1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from turnout.store.models import (
    Connection,
    DeadLetter,
    DeliveryRecord,
    Fate,
    PlaybookRevision,
    Reject,
    Source,
)
from turnout.store.secrets import SecretBox, each_secret

REJECT_PAYLOAD_KEEP = 4096  # keep enough of a refused call to see what was wrong with it

Row = Sequence[Any]


class SecretSettings:
    """Connection settings as stored: one JSON text whose secret fields are sealed.

    Which fields are secret depends on the destination, so the caller gives a lookup rather than
    a fixed list; values that are not strings, or empty, are kept as they are.
    """

    def __init__(self, box: SecretBox, secret_fields: Callable[[str], frozenset[str]]) -> None:
        self._box = box
        self._secret_fields = secret_fields

    def seal(self, destination: str, settings: dict[str, Any]) -> str:
        secret = self._secret_fields(destination)
        return json.dumps(each_secret(settings, secret, self._box.seal))

    def open(self, destination: str, text: str) -> dict[str, Any]:
        secret = self._secret_fields(destination)
        return each_secret(json.loads(text), secret, self._box.open)


# -- rows into models (column order as in the SELECTs of store/sql_store.py) -----------------


def source_from_row(row: Row) -> Source:
    return Source(*row)


def connection_from_row(row: Row, settings: SecretSettings) -> Connection:
    name, destination, sealed, sources, enabled, rate, origin, updated = row
    return Connection(
        name=name,
        destination=destination,
        settings=settings.open(destination, sealed),
        sources=json.loads(sources),
        enabled=bool(enabled),
        rate_limit=rate,
        origin=origin,
        updated_at=updated,
    )


def delivery_from_row(row: Row) -> DeliveryRecord:
    connection, offset, message_id, person, fate, detail, attempts, request, response, at = row[:10]
    return DeliveryRecord(
        connection=connection,
        offset=offset,
        message_id=message_id,
        person=person,
        fate=Fate(fate),
        detail=detail,
        attempts=attempts,
        request=request,
        response=response,
        updated_at=at,
        playbook_revision=row[10] if len(row) > 10 else None,
    )


def playbook_revision_from_row(row: Row) -> PlaybookRevision:
    connection, number, created_at, origin, rules, consent, missing, diff, note = row
    return PlaybookRevision(
        connection=connection,
        number=int(number),
        created_at=float(created_at),
        origin=origin,
        rules=json.loads(rules),
        consent=json.loads(consent),
        consent_missing=missing,
        diff=diff,
        note=note,
    )


def playbook_revision_params(revision: PlaybookRevision) -> tuple[Any, ...]:
    return (
        revision.connection,
        revision.number,
        revision.created_at,
        revision.origin,
        json.dumps(revision.rules),
        json.dumps(revision.consent),
        revision.consent_missing,
        revision.diff,
        revision.note,
    )


def dead_letter_from_row(row: Row) -> DeadLetter:
    values = list(row)
    values[8] = bytes(values[8])  # BYTEA arrives as bytes already; memoryview on some setups
    return DeadLetter(*values)


def reject_from_row(row: Row) -> Reject:
    return Reject(*row)


# -- models into statement parameters --------------------------------------------------------


def connection_params(connection: Connection, settings: SecretSettings) -> tuple[Any, ...]:
    return (
        connection.name,
        connection.destination,
        settings.seal(connection.destination, connection.settings),
        json.dumps(connection.sources),
        connection.enabled,  # a bool: BOOLEAN in PostgreSQL, stored as 0/1 by SQLite
        connection.rate_limit,
        connection.origin,
        connection.updated_at,
    )


def renamed_sources(sources: str, old: str, new: str) -> str:
    """A connection's stored source list with `old` renamed to `new`."""
    return json.dumps([new if s == old else s for s in json.loads(sources)])


def delivery_params(records: list[DeliveryRecord], now: float) -> list[tuple[Any, ...]]:
    """One row per (connection, offset), the last fate in the batch winning, sorted by key:
    concurrent writers then lock rows in the same order and never deadlock."""
    latest = {(r.connection, r.offset): r for r in records}
    return [
        (
            r.connection,
            r.offset,
            r.message_id,
            r.person,
            r.fate.value,
            r.detail,
            r.attempts,
            r.request,
            r.response,
            now,
            r.playbook_revision,
        )
        for _, r in sorted(latest.items())
    ]


def fate_count_params(records: list[DeliveryRecord], minute: int) -> list[tuple[Any, ...]]:
    """Every record counts once towards its fate's minute (sorted, for the same reason)."""
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        key = (r.connection, r.fate.value)
        counts[key] = counts.get(key, 0) + 1
    return [(c, minute, f, n) for (c, f), n in sorted(counts.items())]


def dead_letter_params(letters: list[DeadLetter]) -> list[tuple[Any, ...]]:
    return [
        (
            d.connection,
            d.offset,
            d.message_id,
            d.person,
            d.reason,
            d.request,
            d.response,
            d.payload,
            d.created_at or time.time(),
        )
        for d in letters
    ]


def reject_params(rejects: list[Reject]) -> list[tuple[Any, ...]]:
    return [
        (r.source, r.code, r.message, r.payload[:REJECT_PAYLOAD_KEEP], r.created_at)
        for r in rejects
    ]
