"""The store's privacy tables: requests (the audit trail), the suppression list, deletion markers.

Written once for both store backends, in SQL both SQLite and PostgreSQL accept, through the
store's own statement runners; the tables are created here so the privacy feature owns its
schema. Nothing here holds an id in clear text:
- a suppressed id is kept sealed (encrypted with the server's secret key), keyed by its hash,
  because ingest needs the id itself in memory and unsuppressing must find it;
- a request keeps its ids sealed while it runs (so it can resume after a restart), then only
  their hashes: an auditor holding an id can check it was in a request, nobody can list them;
- a deletion marker is the hash of the person key and the log offset it covers.
`privacy_version` changes with every change to the list, so other processes sharing the store
know when to reload it. Requests are never trimmed by retention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS privacy_requests (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    status TEXT NOT NULL,
    ids TEXT NOT NULL,
    ids_form TEXT NOT NULL,
    user_count INTEGER NOT NULL,
    anonymous_count INTEGER NOT NULL,
    log_head BIGINT NOT NULL,
    steps TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS privacy_suppressions (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    sealed TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS privacy_markers (
    key TEXT PRIMARY KEY,
    upto BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS privacy_version (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
)""",
)
_COLUMNS = (
    "id, action, requested_by, created_at, finished_at, status, ids, ids_form, user_count,"
    " anonymous_count, log_head, steps"
)
_BUMP = (
    "INSERT INTO privacy_version (name, version) VALUES ('list', 1)"
    " ON CONFLICT (name) DO UPDATE SET version = privacy_version.version + 1"
)


class Runner(Protocol):
    """What the privacy tables need from a store (both `SqlStore` backends provide it)."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def _many(self, statements: Any) -> None: ...


@dataclass(slots=True)
class Step:
    """One part of a request and how it went: `count` is what it removed or changed."""

    name: str
    status: str  # pending | done | failed
    count: int = 0
    detail: str = ""
    at: float = 0.0


@dataclass(slots=True)
class RequestRow:
    id: str
    action: str
    requested_by: str
    created_at: float
    status: str  # pending | done | failed
    ids: str  # sealed JSON while pending, JSON of hashes once done
    ids_form: str  # "sealed" | "hashed"
    user_count: int
    anonymous_count: int
    log_head: int
    steps: list[Step] = field(default_factory=list)
    finished_at: float | None = None


def _row(row: tuple[Any, ...]) -> RequestRow:
    (rid, action, by, created, finished, status, ids, form, users, anons, head, steps) = row
    return RequestRow(
        id=str(rid),
        action=str(action),
        requested_by=str(by),
        created_at=float(created),
        finished_at=None if finished is None else float(finished),
        status=str(status),
        ids=str(ids),
        ids_form=str(form),
        user_count=int(users),
        anonymous_count=int(anons),
        log_head=int(head),
        steps=[Step(**s) for s in json.loads(steps)],
    )


def _steps(steps: list[Step]) -> str:
    return json.dumps(
        [
            {"name": s.name, "status": s.status, "count": s.count, "detail": s.detail, "at": s.at}
            for s in steps
        ]
    )


class PrivacyRecords:
    """Reads and writes the privacy tables of one store."""

    def __init__(self, store: Runner) -> None:
        self._store = store

    async def start(self) -> None:
        await self._store._many([(sql, [()]) for sql in _SCHEMA])

    async def version(self) -> int:
        rows = await self._store._read("SELECT version FROM privacy_version WHERE name = 'list'")
        return int(rows[0][0]) if rows else 0

    # -- requests ----------------------------------------------------------------------------

    async def add_request(
        self,
        request: RequestRow,
        suppress: Sequence[tuple[str, str, str]] = (),
        unsuppress: Sequence[str] = (),
        markers: Sequence[tuple[str, int]] = (),
    ) -> None:
        """The request and what it changes in the list, in one transaction: all or nothing.

        `suppress` rows are (key, kind, sealed id); `unsuppress` keys; `markers` (key, upto)."""
        now = request.created_at
        statements: list[tuple[str, list[Sequence[Any]]]] = [
            (
                f"INSERT INTO privacy_requests ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        request.id,
                        request.action,
                        request.requested_by,
                        request.created_at,
                        request.finished_at,
                        request.status,
                        request.ids,
                        request.ids_form,
                        request.user_count,
                        request.anonymous_count,
                        request.log_head,
                        _steps(request.steps),
                    )
                ],
            ),
            (
                "INSERT INTO privacy_suppressions (key, kind, sealed, request_id, created_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT (key) DO NOTHING",
                [(key, kind, sealed, request.id, now) for key, kind, sealed in suppress],
            ),
            ("DELETE FROM privacy_suppressions WHERE key = ?", [(key,) for key in unsuppress]),
            (
                "INSERT INTO privacy_markers (key, upto, created_at) VALUES (?,?,?)"
                " ON CONFLICT (key) DO UPDATE SET upto = excluded.upto",
                [(key, upto, now) for key, upto in markers],
            ),
        ]
        if suppress or unsuppress or markers:
            statements.append((_BUMP, [()]))
        await self._store._many(statements)

    async def update_request(self, request: RequestRow) -> None:
        await self._store._many(
            [
                (
                    "UPDATE privacy_requests SET status = ?, finished_at = ?, ids = ?,"
                    " ids_form = ?, steps = ? WHERE id = ?",
                    [
                        (
                            request.status,
                            request.finished_at,
                            request.ids,
                            request.ids_form,
                            _steps(request.steps),
                            request.id,
                        )
                    ],
                )
            ]
        )

    async def get_request(self, request_id: str) -> RequestRow | None:
        rows = await self._store._read(
            f"SELECT {_COLUMNS} FROM privacy_requests WHERE id = ?", (request_id,)
        )
        return _row(rows[0]) if rows else None

    async def requests(self, limit: int = 100, status: str | None = None) -> list[RequestRow]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = await self._store._read(
            f"SELECT {_COLUMNS} FROM privacy_requests {where}"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_row(row) for row in rows]

    # -- the list ----------------------------------------------------------------------------

    async def suppressions(self) -> list[tuple[str, str]]:
        """(kind, sealed id) of every suppressed id."""
        rows = await self._store._read("SELECT kind, sealed FROM privacy_suppressions")
        return [(str(kind), str(sealed)) for kind, sealed in rows]

    async def markers(self) -> dict[str, int]:
        rows = await self._store._read("SELECT key, upto FROM privacy_markers")
        return {str(key): int(upto) for key, upto in rows}

    async def suppressed_count(self) -> int:
        rows = await self._store._read("SELECT COUNT(*) FROM privacy_suppressions")
        return int(rows[0][0])
