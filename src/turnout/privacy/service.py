"""Privacy requests, from the moment one is accepted to its audit record.

- suppress / unsuppress change the in-memory list (so ingest and every lane act on it before the
  request is even answered) and the store's copy, in one step; the request is then done.
- delete marks the people as deleted up to the log's head at that moment (lanes drop what they
  still hold of them), then, in the background, erases their calls from the log and their
  records from the store; a request interrupted by a restart runs again at the next start.
- suppress_and_delete does both.
- every connection whose destination knows the action is told about each userId, by its lane,
  in that person's order (privacy/forwarding.py); the request finishes when all have answered.
Once a request is done its ids are replaced by their hashes in the audit record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from turnout.privacy.erase import NotErasable, Scrubbable, erase_log, erase_store
from turnout.privacy.forwarding import (
    FAILED,
    NOT_FORWARDED,
    NOT_SUPPORTED,
    PENDING,
    TERMINAL,
    Progress,
    Ticket,
    connection_of,
    step_name,
)
from turnout.privacy.records import PrivacyRecords, RequestRow, Runner, Step
from turnout.privacy.suppression import PrivacyList
from turnout.store.secrets import SecretBox

log = logging.getLogger("turnout.privacy")

Action = Literal["suppress", "unsuppress", "delete", "suppress_and_delete"]
ACTIONS: tuple[str, ...] = ("suppress", "unsuppress", "delete", "suppress_and_delete")
Origin = Literal["api", "cli", "dashboard"]
MAX_IDS = 5000  # ids per request, user and anonymous together
MAX_ID_LENGTH = 1000
REFRESH_INTERVAL = 2.0  # seconds between checks for changes made by another process
USER, ANONYMOUS = "user", "anonymous"


class ForwardingLane(Protocol):
    def forward(self, ticket: Ticket) -> None: ...


class Lanes(Protocol):
    """What the service needs of the delivery manager to tell destinations of a request."""

    def privacy_lane(self, name: str, person: str) -> ForwardingLane | None: ...

    async def privacy_support(self, action: str, request_id: str) -> dict[str, str]: ...


class PrivacyRequestError(ValueError):
    """A request that can never be carried out as sent; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Ids:
    user_ids: list[str]
    anonymous_ids: list[str]

    @property
    def persons(self) -> set[str]:
        """The log's person keys these ids stand for."""
        return set(self.user_ids) | set(self.anonymous_ids)


def check_request(action: Any, user_ids: Any, anonymous_ids: Any) -> Ids:
    """The request's ids, or `PrivacyRequestError` naming the first field at fault."""
    if action not in ACTIONS:
        raise PrivacyRequestError("action", f"action: must be one of {', '.join(ACTIONS)}")
    lists: dict[str, list[str]] = {}
    for name, value in (("user_ids", user_ids), ("anonymous_ids", anonymous_ids)):
        value = [] if value is None else value
        if not isinstance(value, list):
            raise PrivacyRequestError(name, f"{name}: must be a list of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise PrivacyRequestError(name, f"{name}[{index}]: must be a non-empty string")
            if len(item) > MAX_ID_LENGTH:
                raise PrivacyRequestError(
                    name, f"{name}[{index}]: over the limit of {MAX_ID_LENGTH} characters"
                )
        lists[name] = list(dict.fromkeys(value))
    total = len(lists["user_ids"]) + len(lists["anonymous_ids"])
    if not total:
        raise PrivacyRequestError("user_ids", "user_ids: give at least one id (or anonymous_ids)")
    if total > MAX_IDS:
        raise PrivacyRequestError(
            "user_ids", f"user_ids: {total} ids (with anonymous_ids) is over the limit of {MAX_IDS}"
        )
    return Ids(lists["user_ids"], lists["anonymous_ids"])


class PrivacyService:
    """Accepts, carries out and reports privacy requests for one Turnout process."""

    def __init__(
        self, store: Runner, log_: Any, box: SecretBox, privacy: PrivacyList, *, runs: bool
    ) -> None:
        self.records = PrivacyRecords(store)
        self.list = privacy
        self._store = store
        self._log = log_
        self._box = box
        self._hash = privacy.hasher
        self._runs = runs  # whether this process erases (the one owning the log's writer)
        self._version = -1
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self.delivery: Lanes | None = None  # the lanes that tell destinations (set by the app)
        self._active: dict[str, tuple[RequestRow, Ids]] = {}  # unfinished, run by this process
        self._progress: dict[tuple[str, str], Progress] = {}  # (request, connection)
        self._dirty: set[str] = set()  # requests whose row must be written again
        self._write = asyncio.Lock()

    async def start(self) -> None:
        await self.records.start()
        await self.reload()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="privacy-refresh")
        await self._pick_up()

    async def close(self) -> None:
        tasks = [t for t in (self._refresher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the list ----------------------------------------------------------------------------

    async def reload(self) -> None:
        """Load the list from the store (at start, and when another process changed it)."""
        version = await self.records.version()
        if version == self._version:
            return
        users: set[str] = set()
        anonymous: set[str] = set()
        for kind, sealed in await self.records.suppressions():
            (users if kind == USER else anonymous).add(self._box.open(sealed))
        self.list.users, self.list.anonymous = users, anonymous
        self.list.deleted = await self.records.markers()
        self._version = version

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self.reload()
                await self._pick_up()
            except Exception as exc:  # keep the list known; try again
                log.warning("could not reload the privacy list: %r", exc)

    async def _pick_up(self) -> None:
        """Run the unfinished requests this process does not run yet (made before a restart,
        or by another process), and hand on what lanes did not take (a lane not running yet,
        or restarted with new settings)."""
        if not self._runs:
            return
        for row in await self.records.requests(limit=1000, status="pending"):
            if row.id not in self._active:
                users, anonymous = json.loads(self._box.open(row.ids))
                self._active[row.id] = (row, Ids(users, anonymous))
                if any(s.status == PENDING for s in row.steps if s.name in ("log", "store")):
                    self._erase_later(row)
        for request, ids in list(self._active.values()):
            self._forward(request, ids)

    # -- requests ----------------------------------------------------------------------------

    async def submit(self, action: str, ids: Ids, origin: str) -> RequestRow:
        """Record the request and apply what takes effect at once; erasure runs afterwards."""
        now = time.time()
        suppressing = action in ("suppress", "suppress_and_delete")
        deleting = action in ("delete", "suppress_and_delete")
        if suppressing:  # first: no call of theirs is taken in from here on
            self._apply(action, ids, ())
        head = await self._log.head()
        request = RequestRow(
            id=f"pr_{int(now * 1000):x}{secrets.token_hex(4)}",
            action=action,
            requested_by=origin,
            created_at=now,
            status="pending",
            ids=self._box.seal(json.dumps([ids.user_ids, ids.anonymous_ids])),
            ids_form="sealed",
            user_count=len(ids.user_ids),
            anonymous_count=len(ids.anonymous_ids),
            log_head=head,
        )
        support = await self.delivery.privacy_support(action, request.id) if self.delivery else {}
        for name, first in support.items():
            if first == PENDING and not ids.user_ids:
                request.steps.append(Step(step_name(name), NOT_SUPPORTED, detail=NOT_FORWARDED))
            elif first.startswith(FAILED):
                detail = first.removeprefix(f"{FAILED}: ")
                request.steps.append(Step(step_name(name), FAILED, detail=detail, at=now))
            else:
                request.steps.append(Step(step_name(name), first))
        typed = [(USER, v) for v in ids.user_ids] + [(ANONYMOUS, v) for v in ids.anonymous_ids]
        seal = self._box.seal
        suppress = [(self._hash(k, v), k, seal(v)) for k, v in typed] if suppressing else []
        unsuppress = [self._hash(k, v) for k, v in typed] if action == "unsuppress" else []
        markers = [(self._hash("person", p), head) for p in ids.persons] if deleting else []
        if suppressing or action == "unsuppress":
            request.steps.append(Step(action.split("_")[0], "done", len(typed), at=now))
        if deleting:
            request.steps += [Step("log", "pending"), Step("store", "pending")]
        if all(step.status in TERMINAL for step in request.steps):
            request.status, request.finished_at = self._outcome(request), now
            request.ids, request.ids_form = self._hashed(ids), "hashed"
        elif self._runs:
            self._active[request.id] = (request, ids)  # before the row exists: run it once
        try:
            async with self._lock:
                await self.records.add_request(request, suppress, unsuppress, markers)
                self._apply(action, ids, markers)
        except BaseException:
            self._active.pop(request.id, None)
            raise
        log.info("privacy request %s (%s, %d ids) accepted", request.id, action, len(typed))
        if request.id in self._active:
            if deleting:
                self._erase_later(request)
            self._forward(request, ids)
        return request

    # -- telling destinations ----------------------------------------------------------------

    def _forward(self, request: RequestRow, ids: Ids) -> None:
        """Hand each person to the lane that orders their calls for each connection still to
        be told; people already handed over (or whose lane does not run here) are skipped."""
        if self.delivery is None:
            return
        for step in request.steps:
            name = connection_of(step)
            if name is None or step.status in TERMINAL:
                continue
            progress = self._progress.setdefault((request.id, name), Progress(ids.user_ids))
            for person in ids.user_ids:
                if person in progress.states:
                    continue
                lane = self.delivery.privacy_lane(name, person)
                if lane is None:
                    continue
                progress.states[person] = PENDING
                lane.forward(Ticket(request.id, name, request.action, person, self._report))

    def _report(self, ticket: Ticket, status: str, detail: str) -> None:
        """A lane's news of one ticket: update the connection's step and write it soon."""
        active = self._active.get(ticket.request_id)
        progress = self._progress.get((ticket.request_id, ticket.connection))
        if active is None or progress is None:
            return
        if status == "released":  # its lane stopped before sending it: hand it on again
            progress.states.pop(ticket.person, None)
            return
        if progress.states.get(ticket.person) in TERMINAL:
            return
        progress.states[ticket.person] = status
        progress.details[ticket.person] = detail
        request = active[0]
        for step in request.steps:
            if step.name == step_name(ticket.connection):
                progress.summarise(step)
                step.at = time.time()
        self._save_later(request)

    def _save_later(self, request: RequestRow) -> None:
        """Write the request's row once for any number of changes made meanwhile."""
        if request.id in self._dirty:
            return
        self._dirty.add(request.id)
        task = asyncio.create_task(self._save(request), name=f"privacy-save:{request.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, request: RequestRow) -> None:
        """Write the request's row; once every step has its outcome, finish the request: its
        ids become hashes and this process forgets it."""
        async with self._write:
            self._dirty.discard(request.id)
            if request.status != "pending":
                return
            finished = all(step.status in TERMINAL for step in request.steps)
            active = self._active.get(request.id)
            if finished and active is not None:
                request.status, request.finished_at = self._outcome(request), time.time()
                request.ids, request.ids_form = self._hashed(active[1]), "hashed"
            await self.records.update_request(request)
            if request.status == "pending":
                return
            self._active.pop(request.id, None)
            for key in [k for k in self._progress if k[0] == request.id]:
                del self._progress[key]
            if isinstance(self._store, Scrubbable):
                await self._store.scrub()  # the sealed ids' old page images go too
        log.info("privacy request %s %s", request.id, request.status)

    @staticmethod
    def _outcome(request: RequestRow) -> str:
        return "failed" if any(s.status == FAILED for s in request.steps) else "done"

    def _apply(self, action: str, ids: Ids, markers: Sequence[tuple[str, int]]) -> None:
        """The same change in memory, so it holds from this moment in this process."""
        if action in ("suppress", "suppress_and_delete"):
            self.list.users = self.list.users | set(ids.user_ids)
            self.list.anonymous = self.list.anonymous | set(ids.anonymous_ids)
        elif action == "unsuppress":
            self.list.users = self.list.users - set(ids.user_ids)
            self.list.anonymous = self.list.anonymous - set(ids.anonymous_ids)
        if markers:
            self.list.deleted = {**self.list.deleted, **dict(markers)}

    def _hashed(self, ids: Ids) -> str:
        return json.dumps(
            {
                "user_ids": [self._hash(USER, v) for v in ids.user_ids],
                "anonymous_ids": [self._hash(ANONYMOUS, v) for v in ids.anonymous_ids],
            }
        )

    def _erase_later(self, request: RequestRow) -> None:
        task = asyncio.create_task(self._erase(request), name=f"privacy:{request.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _erase(self, request: RequestRow) -> None:
        """Erase the request's people from the log and the store, one request at a time."""
        users, anonymous = json.loads(self._box.open(request.ids))
        ids = Ids(users, anonymous)
        steps = {step.name: step for step in request.steps}
        async with self._lock:
            for name in ("log", "store"):
                step = steps[name]
                if step.status == "done":
                    continue
                try:
                    if name == "log":
                        # Suppressed people have no later calls but those ingest was committing
                        # as the request came: up to the head now, those go too.
                        upto = request.log_head
                        if request.action == "suppress_and_delete":
                            upto = await self._log.head()
                        step.count = await erase_log(self._log, ids.persons, upto)
                    else:
                        counts = await erase_store(
                            self._store, sorted(ids.persons), users + anonymous
                        )
                        step.count = sum(counts.values())
                        step.detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
                    step.status = "done"
                except NotErasable as exc:
                    step.status, step.detail = "failed", str(exc)
                except Exception as exc:
                    log.exception("privacy request %s: %s step failed", request.id, name)
                    step.status, step.detail = "failed", f"{type(exc).__name__}: {exc}"
                step.at = time.time()
                await self._save(request)

    async def wait_idle(self) -> None:
        """Until every erasure and write started so far has finished (tests of the service)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
