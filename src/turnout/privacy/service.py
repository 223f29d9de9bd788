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

Who does what, when several processes share a partitioned log: the work of a request is split
into parts, one per step and partition of the log (records.py), and each part is done by the
process that delivers that partition, the one whose lanes order those people's calls. Any
process may accept a request; it records the parts and tells the others (a notice on the log,
with no ids in it; each process also looks for unfinished requests every 2 seconds, so a lost
notice or a partition changing hands only delays a part). A process writes only its own parts,
and whichever process sees the last part's outcome finishes the request. With one process (the
embedded log, one partition) it is all the same: that process does every part.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from turnout.privacy.erase import NotErasable, Scrubbable, erase_log, erase_store
from turnout.privacy.forwarding import (
    DONE,
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
from turnout.privacy.records import PrivacyRecords, RequestRow, Runner, Step, combine
from turnout.privacy.suppression import PrivacyList
from turnout.store.secrets import SecretBox

logger = logging.getLogger("turnout.privacy")

Action = Literal["suppress", "unsuppress", "delete", "suppress_and_delete"]
ACTIONS: tuple[str, ...] = ("suppress", "unsuppress", "delete", "suppress_and_delete")
Origin = Literal["api", "cli", "dashboard"]
MAX_IDS = 5000  # ids per request, user and anonymous together
MAX_ID_LENGTH = 1000
REFRESH_INTERVAL = 2.0  # seconds between checks for changes made by another process
USER, ANONYMOUS = "user", "anonymous"
NOTICE = {"kind": "privacy"}  # tells the other processes to look for new requests (no ids)
ERASED = ("log", "store")  # the steps that erase, in this order, per partition
ERASE_ATTEMPTS = 3


class ForwardingLane(Protocol):
    def forward(self, ticket: Ticket) -> None: ...


class Lanes(Protocol):
    """What the service needs of the delivery manager to tell destinations of a request."""

    active: set[int]  # the partitions of the log this process delivers

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
        self._runs = runs  # whether this process does parts (it delivers partitions)
        self._version = -1
        self._opened: dict[str, str] = {}  # sealed id -> id, as the list last loaded them
        self._lock = asyncio.Lock()  # a request and its change of the list, stored as one
        self._erase_lock = asyncio.Lock()  # one erasure at a time in this process
        self._refresh_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self.delivery: Lanes | None = None  # the lanes that tell destinations (set by the app)
        self._ids: dict[str, Ids] = {}  # the ids of unfinished requests seen here, opened
        # (request, connection, partition) -> this process's telling of that part
        self._told: dict[tuple[str, str, int], _Told] = {}
        self._erasing: set[tuple[str, int]] = set()  # (request, partition) being erased here
        self._dirty: set[tuple[str, str, int]] = set()  # told parts to be written again

    async def start(self) -> None:
        await self.records.start()
        await self.reload()
        on_control = getattr(self._log, "on_control", None)
        if on_control is not None:
            on_control(self._on_notice)
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
        opened: dict[str, str] = {}
        for kind, sealed in await self.records.suppressions():
            # Opening a sealed id costs ~15 us: reuse what the last load opened, so a new
            # request with a list of 100,000 ids does not stall the event loop for seconds.
            plain = self._opened.get(sealed)
            if plain is None:
                plain = self._box.open(sealed)
            opened[sealed] = plain
            (users if kind == USER else anonymous).add(plain)
        self._opened = opened
        self.list.users, self.list.anonymous = users, anonymous
        self.list.deleted = await self.records.markers()
        self._version = version

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            await self._refresh()

    async def _refresh(self) -> None:
        """Reload the list, then take up what is to be done here (in that order: a partition's
        people are withheld by its lanes before they are told or erased)."""
        async with self._refresh_lock:
            try:
                await self.reload()
                await self._pick_up()
            except Exception as exc:  # keep the list known; try again
                logger.warning("could not reload the privacy list or requests: %r", exc)

    async def _on_notice(self, notice: dict[str, Any]) -> None:
        if notice.get("kind") == NOTICE["kind"]:
            self._spawn(self._refresh(), "privacy-notice")

    async def _announce(self) -> None:
        """Tell the other processes sharing the log to look now rather than at their next
        round; they would find the request within `REFRESH_INTERVAL` all the same."""
        broadcast = getattr(self._log, "broadcast", None)
        if broadcast is None:
            return
        try:
            await broadcast(dict(NOTICE))
        except Exception as exc:
            logger.warning("could not tell the other processes of a privacy request: %r", exc)

    # -- which parts are done here -----------------------------------------------------------

    def _owned(self) -> set[int]:
        """The partitions whose parts this process does: those it delivers."""
        if not self._runs or self.delivery is None:
            return set()
        return set(self.delivery.active)

    def _partition_of(self, person: str) -> int:
        return int(self._log.partition_of(person))

    def _parts(self, name: str, people: Iterable[str]) -> list[Step]:
        """One pending part of the step per partition holding some of these people."""
        return [
            Step(name, PENDING, part=p) for p in sorted({self._partition_of(x) for x in people})
        ]

    def _ids_of(self, request: RequestRow) -> Ids:
        ids = self._ids.get(request.id)
        if ids is None:
            users, anonymous = json.loads(self._box.open(request.ids))
            ids = self._ids[request.id] = Ids(users, anonymous)
        return ids

    async def _pick_up(self) -> None:
        """Take up the parts of unfinished requests that are this process's to do: those of
        requests made in another process, or before a restart, or of partitions it just took
        over; hand on what lanes did not take (a lane not running yet, or restarted with new
        settings); and finish requests whose every part has its outcome."""
        if not self._runs:
            return
        owned = self._owned()
        for key in [k for k in self._told if k[2] not in owned]:
            del self._told[key]  # its partition moved on: its next owner tells the people
        known = set(self._ids)
        pending = await self.records.requests(limit=1000, status=PENDING)
        for request_id in known - {r.id for r in pending}:
            self._forget(request_id)  # finished by another process: no id stays in memory
        for request in pending:
            if not request.parts:  # made before requests were split into parts
                request = await self._split(request)
            if all(part.status in TERMINAL for part in request.parts):
                await self._finish(request)
            else:
                self._take(request, owned)

    def _take(self, request: RequestRow, owned: set[int]) -> None:
        """Start this process's parts of the request that are not running here yet."""
        ids = self._ids_of(request)
        for part in request.parts:
            if part.status in TERMINAL or part.part not in owned:
                continue
            name = connection_of(part)
            if name is not None:
                self._tell(request, ids, name, part)
            elif part.name in ERASED and (request.id, part.part) not in self._erasing:
                self._erasing.add((request.id, part.part))
                self._spawn(self._erase(request, ids, part.part), f"privacy:{request.id}")

    async def _split(self, request: RequestRow) -> RequestRow:
        """Parts for a request recorded with whole steps only: its unfinished steps split by
        partition like a new request's."""
        ids = self._ids_of(request)
        parts: list[Step] = []
        for step in request.steps:
            if step.status in TERMINAL:
                parts.append(Step(step.name, step.status, step.count, step.detail, step.at))
            elif connection_of(step) is None:
                parts += self._parts(step.name, ids.persons)
            else:
                told = self._parts(step.name, ids.user_ids)
                parts += told or [Step(step.name, NOT_SUPPORTED, detail=NOT_FORWARDED)]
        await self.records.add_parts(request.id, parts)
        return await self.records.get_request(request.id) or request

    # -- requests ----------------------------------------------------------------------------

    async def submit(self, action: str, ids: Ids, origin: str) -> RequestRow:
        """Record the request and apply what takes effect at once; the rest runs afterwards."""
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
            status=PENDING,
            ids=self._box.seal(json.dumps([ids.user_ids, ids.anonymous_ids])),
            ids_form="sealed",
            user_count=len(ids.user_ids),
            anonymous_count=len(ids.anonymous_ids),
            log_head=head,
        )
        parts = request.parts
        support = await self.delivery.privacy_support(action, request.id) if self.delivery else {}
        for name, first in support.items():
            if first == PENDING and not ids.user_ids:
                parts.append(Step(step_name(name), NOT_SUPPORTED, detail=NOT_FORWARDED))
            elif first == PENDING:
                parts += self._parts(step_name(name), ids.user_ids)
            elif first.startswith(FAILED):
                detail = first.removeprefix(f"{FAILED}: ")
                parts.append(Step(step_name(name), FAILED, detail=detail, at=now))
            else:
                parts.append(Step(step_name(name), first))
        typed = [(USER, v) for v in ids.user_ids] + [(ANONYMOUS, v) for v in ids.anonymous_ids]
        seal = self._box.seal
        suppress = [(self._hash(k, v), k, seal(v)) for k, v in typed] if suppressing else []
        unsuppress = [self._hash(k, v) for k, v in typed] if action == "unsuppress" else []
        markers = [(self._hash("person", p), head) for p in ids.persons] if deleting else []
        if suppressing or action == "unsuppress":
            parts.append(Step(action.split("_")[0], DONE, len(typed), at=now))
        if deleting:
            for name in ERASED:
                parts += self._parts(name, ids.persons)
        request.steps = combine(parts)
        if all(part.status in TERMINAL for part in parts):
            request.status, request.finished_at = self._outcome(request.steps), now
            request.ids, request.ids_form = self._hashed(ids), "hashed"
        async with self._lock:
            await self.records.add_request(request, suppress, unsuppress, markers)
            self._apply(action, ids, markers)
        logger.info("privacy request %s (%s, %d ids) accepted", request.id, action, len(typed))
        if request.status == PENDING:
            if self._runs:  # else it is done elsewhere: keep no ids in memory here
                self._ids[request.id] = ids
                self._take(request, self._owned())
            await self._announce()
        return request

    # -- telling destinations ----------------------------------------------------------------

    def _tell(self, request: RequestRow, ids: Ids, name: str, part: Step) -> None:
        """Hand each person of the part to the lane that orders their calls for the
        connection; people already handed over (or whose lane does not run) are skipped."""
        if self.delivery is None:
            return
        key = (request.id, name, part.part)
        told = self._told.get(key)
        if told is None:
            people = [p for p in ids.user_ids if self._partition_of(p) == part.part]
            mine = Step(part.name, part.status, part.count, part.detail, part.at, part.part)
            told = self._told[key] = _Told(Progress(people), mine)
        elif told.part.status in TERMINAL:  # its outcome was not written (the store failed)
            self._save_later(key)
            return
        for person in told.progress.people:
            if person in told.progress.states:
                continue
            lane = self.delivery.privacy_lane(name, person)
            if lane is None:
                continue
            told.progress.dispatched(person)
            lane.forward(Ticket(request.id, name, request.action, person, self._report))

    def _report(self, ticket: Ticket, status: str, detail: str) -> None:
        """A lane's news of one ticket: update the connection's part and write it soon."""
        key = (ticket.request_id, ticket.connection, self._partition_of(ticket.person))
        told = self._told.get(key)
        if told is None:
            return
        progress = told.progress
        if status == "released":  # its lane stopped before sending it: hand it on again
            progress.released(ticket.person)
            return
        if progress.states.get(ticket.person) in TERMINAL:
            return
        progress.update(ticket.person, status, detail)
        progress.summarise(told.part)
        told.part.at = time.time()
        self._save_later(key)

    def _save_later(self, key: tuple[str, str, int]) -> None:
        """Write the part once for any number of changes made meanwhile."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._spawn(self._save(key), f"privacy-save:{key[0]}")

    async def _save(self, key: tuple[str, str, int]) -> None:
        self._dirty.discard(key)
        told = self._told.get(key)
        if told is None:
            return
        part = told.part
        await self.records.update_part(
            key[0], Step(part.name, part.status, part.count, part.detail, part.at, part.part)
        )
        if part.status in TERMINAL:
            await self._finish_if_done(key[0])

    # -- erasing -----------------------------------------------------------------------------

    async def _erase(self, request: RequestRow, ids: Ids, partition: int) -> None:
        """Erase the people of one partition from the log, then from the store."""
        persons = {p for p in ids.persons if self._partition_of(p) == partition}
        parts = {p.name: p for p in request.parts if p.part == partition}
        try:
            async with self._erase_lock:
                for name in ERASED:
                    part = parts.get(name)
                    if part is None or part.status in TERMINAL:
                        continue
                    await self._erase_part(request, part, persons)
                    await self.records.update_part(request.id, part)
        finally:
            self._erasing.discard((request.id, partition))
        await self._finish_if_done(request.id)

    async def _erase_part(self, request: RequestRow, part: Step, persons: set[str]) -> None:
        """Erase; a failure is tried again twice (erasing is idempotent, and a shared log or
        store may fail for a moment) before the part is reported failed with its reason."""
        for attempt in range(1, ERASE_ATTEMPTS + 1):
            await self._erase_once(request, part, persons, final=attempt == ERASE_ATTEMPTS)
            if part.status != PENDING:
                break
            await asyncio.sleep(attempt)
        part.at = time.time()

    async def _erase_once(
        self, request: RequestRow, part: Step, persons: set[str], *, final: bool
    ) -> None:
        try:
            if part.name == "log":
                # Suppressed people have no later calls but those ingest was committing as the
                # request came: up to the head now, those go too.
                upto = request.log_head
                if request.action == "suppress_and_delete":
                    upto = await self._log.head()
                part.count = await erase_log(self._log, persons, upto)
            else:
                counts = await erase_store(self._store, sorted(persons), sorted(persons))
                part.count = sum(counts.values())
                part.detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
            part.status = DONE
        except NotErasable as exc:
            part.status, part.detail = FAILED, str(exc)
        except Exception as exc:
            if not final:
                logger.warning("privacy request %s: %s step: %r; again", request.id, part.name, exc)
                return
            logger.exception("privacy request %s: %s step failed", request.id, part.name)
            part.status, part.detail = FAILED, f"{type(exc).__name__}: {exc}"

    # -- finishing ---------------------------------------------------------------------------

    async def _finish_if_done(self, request_id: str) -> None:
        request = await self.records.get_request(request_id)
        if request is None or request.status != PENDING:
            self._forget(request_id)
        elif request.parts and all(part.status in TERMINAL for part in request.parts):
            await self._finish(request)

    async def _finish(self, request: RequestRow) -> None:
        """Every part has its outcome: record the request's, and replace its ids by hashes."""
        ids = self._ids_of(request)
        request.steps = combine(request.parts)
        request.status, request.finished_at = self._outcome(request.steps), time.time()
        request.ids, request.ids_form = self._hashed(ids), "hashed"
        await self.records.finish(request)
        self._forget(request.id)
        if isinstance(self._store, Scrubbable):
            await self._store.scrub()  # the sealed ids' old page images go too
        logger.info("privacy request %s %s", request.id, request.status)

    def _forget(self, request_id: str) -> None:
        self._ids.pop(request_id, None)
        for key in [k for k in self._told if k[0] == request_id]:
            del self._told[key]

    @staticmethod
    def _outcome(steps: list[Step]) -> str:
        return FAILED if any(s.status == FAILED for s in steps) else DONE

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

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("%s failed; it is taken up again: %r", task.get_name(), task.exception())

    async def wait_idle(self) -> None:
        """Until every erasure and write started so far has finished (tests of the service)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(slots=True)
class _Told:
    """This process's telling of one connection about the people of one partition."""

    progress: Progress
    part: Step
