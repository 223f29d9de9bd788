"""Privacy requests, from the moment one is accepted to its audit record.

- suppress / unsuppress change the in-memory list (so ingest and every lane act on it before the
  request is even answered) and the store's copy, in one step; the request is then done.
- delete marks the people as deleted up to the log's head at that moment (lanes drop what they
  still hold of them), then, in the background, erases their calls from the log and their
  records from the store; a request interrupted by a restart runs again at the next start.
- suppress_and_delete does both.
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
from typing import Any, Literal

from turnout.privacy.erase import NotErasable, Scrubbable, erase_log, erase_store
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

    async def start(self) -> None:
        await self.records.start()
        await self.reload()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="privacy-refresh")
        if self._runs:
            for request in await self.records.requests(limit=1000, status="pending"):
                self._erase_later(request)

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
            except Exception as exc:  # keep the list known; try again
                log.warning("could not reload the privacy list: %r", exc)

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
        typed = [(USER, v) for v in ids.user_ids] + [(ANONYMOUS, v) for v in ids.anonymous_ids]
        seal = self._box.seal
        suppress = [(self._hash(k, v), k, seal(v)) for k, v in typed] if suppressing else []
        unsuppress = [self._hash(k, v) for k, v in typed] if action == "unsuppress" else []
        markers = [(self._hash("person", p), head) for p in ids.persons] if deleting else []
        if suppressing or action == "unsuppress":
            request.steps.append(Step(action.split("_")[0], "done", len(typed), at=now))
        if deleting:
            request.steps += [Step("log", "pending"), Step("store", "pending")]
        else:
            request.status, request.finished_at = "done", now
            request.ids, request.ids_form = self._hashed(ids), "hashed"
        async with self._lock:
            await self.records.add_request(request, suppress, unsuppress, markers)
            self._apply(action, ids, markers)
        log.info("privacy request %s (%s, %d ids) accepted", request.id, action, len(typed))
        if deleting and self._runs:
            self._erase_later(request)
        return request

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
                await self.records.update_request(request)
            failed = [s for s in request.steps if s.status == "failed"]
            request.status = "failed" if failed else "done"
            request.finished_at = time.time()
            request.ids, request.ids_form = self._hashed(ids), "hashed"
            await self.records.update_request(request)
            if isinstance(self._store, Scrubbable):
                await self._store.scrub()  # the sealed ids' old page images go too
        log.info("privacy request %s %s", request.id, request.status)

    async def wait_idle(self) -> None:
        """Until every erasure started so far has finished (shutdown, tests of the service)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
