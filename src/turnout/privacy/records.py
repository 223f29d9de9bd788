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

A request's steps are kept one row per part in `privacy_steps`: a part is a step for one
partition of the log (the people whose calls that partition holds), or for the whole request.
Why parts: with several processes, each partition is delivered by one of them, and only that
process can tell a destination about the partition's people in their order; it also erases
them from the log and the store. Each process writes the rows of its own partitions and never
another's, so no process can overwrite what another reported, and a partition that moves to
another process is finished there. A part that has its outcome (done, failed, not_supported)
keeps it: a later write of the same part is ignored. What the API shows as a step is its parts
summed up (`combine`); the request row's own `steps` holds that sum once the request is finished
(and the only copy for requests made before parts existed).
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
    """CREATE TABLE IF NOT EXISTS privacy_steps (
    request_id TEXT NOT NULL,
    name TEXT NOT NULL,
    part INTEGER NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    count BIGINT NOT NULL,
    detail TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (request_id, name, part)
)""",
)
_PART_COLUMNS = "request_id, name, part, position, status, count, detail, at"
_COLUMNS = (
    "id, action, requested_by, created_at, finished_at, status, ids, ids_form, user_count,"
    " anonymous_count, log_head, steps"
)
_BUMP = (
    "INSERT INTO privacy_version (name, version) VALUES ('list', 1)"
    " ON CONFLICT (name) DO UPDATE SET version = privacy_version.version + 1"
)


PENDING, RETRYING, DONE, FAILED, NOT_SUPPORTED = (
    "pending",
    "retrying",
    "done",
    "failed",
    "not_supported",
)
TERMINAL = frozenset({DONE, FAILED, NOT_SUPPORTED})
WHOLE = -1  # the part of a step that covers the whole request, not one partition


class Runner(Protocol):
    """What the privacy tables need from a store (both `SqlStore` backends provide it)."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def _many(self, statements: Any) -> None: ...


@dataclass(slots=True)
class Step:
    """One part of a request and how it went: `count` is what it removed or changed."""

    name: str
    status: str  # pending | retrying | done | failed | not_supported
    count: int = 0
    detail: str = ""
    at: float = 0.0
    part: int = WHOLE  # the partition of the log this part covers, or WHOLE


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
    steps: list[Step] = field(default_factory=list)  # as shown: the parts summed up per step
    finished_at: float | None = None
    parts: list[Step] = field(default_factory=list)  # one row each in privacy_steps


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


def combine(parts: Sequence[Step]) -> list[Step]:
    """The steps of a request as they are shown: its parts summed up per step, in order.

    A step is pending until every part has its outcome; then failed if one part failed, done if
    one is done, else not_supported. `count` is the sum (calls removed, records removed, people
    a destination confirmed); `detail` the reason of the last failed part, or the per-table
    counts of the store's parts added up."""
    groups: dict[str, list[Step]] = {}
    for part in parts:
        groups.setdefault(part.name, []).append(part)
    return [_combined(name, group) for name, group in groups.items()]


def _combined(name: str, group: list[Step]) -> Step:
    statuses = [p.status for p in group]
    if all(s in TERMINAL for s in statuses):
        status = FAILED if FAILED in statuses else DONE if DONE in statuses else NOT_SUPPORTED
    elif RETRYING in statuses:
        status = RETRYING
    else:
        status = PENDING
    failed = [p.detail for p in group if p.status == FAILED and p.detail]
    return Step(
        name,
        status,
        sum(p.count for p in group),
        failed[-1] if failed else _added([p.detail for p in group]),
        max(p.at for p in group),
    )


def _added(details: list[str]) -> str:
    """Details of the form "a: 1, b: 2" added up key by key; otherwise the last one given."""
    given = [d for d in details if d]
    totals: dict[str, int] = {}
    for detail in given:
        for item in detail.split(", "):
            key, _, value = item.partition(": ")
            if not value.isdigit():
                return given[-1]
            totals[key] = totals.get(key, 0) + int(value)
    return ", ".join(f"{k}: {v}" for k, v in totals.items())


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
            _insert_parts(request.id, request.parts),
        ]
        if suppress or unsuppress or markers:
            statements.append((_BUMP, [()]))
        await self._store._many(statements)

    async def add_parts(self, request_id: str, parts: Sequence[Step]) -> None:
        """Parts for a request made before parts existed (those already there are kept)."""
        await self._store._many([_insert_parts(request_id, parts)])

    async def update_part(self, request_id: str, part: Step) -> None:
        """Write one part's progress, unless it already has its outcome: the first outcome
        written stands (a partition moving between processes may be reported by both)."""
        await self._store._many(
            [
                (
                    "UPDATE privacy_steps SET status = ?, count = ?, detail = ?, at = ?"
                    " WHERE request_id = ? AND name = ? AND part = ?"
                    " AND status NOT IN ('done', 'failed', 'not_supported')",
                    [
                        (
                            part.status,
                            part.count,
                            part.detail,
                            part.at,
                            request_id,
                            part.name,
                            part.part,
                        )
                    ],
                )
            ]
        )

    async def finish(self, request: RequestRow) -> None:
        """Record the request's outcome, its steps summed up, and its ids as hashes; only once
        (whichever process sees the last part done first)."""
        await self._store._many(
            [
                (
                    "UPDATE privacy_requests SET status = ?, finished_at = ?, ids = ?,"
                    " ids_form = ?, steps = ? WHERE id = ? AND status = 'pending'",
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
        return (await self._with_parts([_row(rows[0])]))[0] if rows else None

    async def requests(self, limit: int = 100, status: str | None = None) -> list[RequestRow]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = await self._store._read(
            f"SELECT {_COLUMNS} FROM privacy_requests {where}"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return await self._with_parts([_row(row) for row in rows])

    async def _with_parts(self, requests: list[RequestRow]) -> list[RequestRow]:
        """The requests with their parts, and their steps summed up from them (a request made
        before parts existed keeps the steps of its own row)."""
        by_id = {r.id: r for r in requests}
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in await self._store._read(
                f"SELECT {_PART_COLUMNS} FROM privacy_steps WHERE request_id IN ({marks})"
                " ORDER BY request_id, position, part",
                chunk,
            ):
                rid, name, part, _, status, count, detail, at = row
                by_id[str(rid)].parts.append(
                    Step(str(name), str(status), int(count), str(detail), float(at), int(part))
                )
        for request in requests:
            if request.parts and request.status == "pending":
                request.steps = combine(request.parts)
        return requests

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


def _insert_parts(request_id: str, parts: Sequence[Step]) -> tuple[str, list[Sequence[Any]]]:
    return (
        f"INSERT INTO privacy_steps ({_PART_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
        " ON CONFLICT (request_id, name, part) DO NOTHING",
        [
            (request_id, p.name, p.part, position, p.status, p.count, p.detail, p.at)
            for position, p in enumerate(parts)
        ],
    )
