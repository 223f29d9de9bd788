"""A lane: one connection's reader of the log, and the only thing that sends to its destination.

    read the log in order ─▶ map each message ─▶ barrier (per-person order) ─▶ batch
        ─▶ send within the rate limit ─▶ record each message's fate ─▶ commit the position

The committed position only passes a message once it is resolved for this connection
(delivered, filtered or dead-lettered), so after a crash the lane resumes from it and loses
nothing; messages it sends again carry the same dedupe ids. Fates are recorded before the
position moves, and a restarted lane skips messages whose fate is already recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from turnout import metrics
from turnout.config import DeliveryConfig
from turnout.delivery.backoff import retry_delay
from turnout.delivery.barrier import Barrier
from turnout.delivery.shaping import ActivePlaybook, shape_and_map
from turnout.destinations.base import (
    Destination,
    DestinationClient,
    MapResult,
    SendResult,
    Status,
    privacy_operations,
)
from turnout.log.base import Entry, EventLog
from turnout.privacy.forwarding import DONE, FAILED, NOT_SUPPORTED, RETRYING, Ticket
from turnout.privacy.suppression import DELETED, PrivacyList
from turnout.spec import message as spec_message
from turnout.store.models import Connection, DeadLetter, DeliveryRecord, Fate
from turnout.store.sqlite import Store
from turnout.tap import Tap

log = logging.getLogger("turnout.delivery")

READ_CHUNK = 1000
FLUSH_INTERVAL = 0.1  # seconds between writes of fates and the position
CREDENTIALS_PROBE_FIRST = 15.0  # seconds before retrying after credentials were rejected
CREDENTIALS_PROBE_MAX = 300.0
RECOVERED_RETRY_SPREAD = 2.0  # seconds over which backed-off people retry once sends succeed


class LaneState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # by a user
    CREDENTIALS_REJECTED = "credentials_rejected"
    STOPPED = "stopped"


@dataclass(slots=True)
class Pending:
    """A message held by the lane until it is resolved."""

    offset: int
    person: str
    message_id: str
    payload: bytes
    appended_at: float
    mapped: MapResult
    attempts: int = 0
    first_failure: float | None = None
    dead_letter_id: int | None = None  # set when this is a replay of a dead letter
    original_offset: int = 0  # the replayed dead letter's place in the log
    playbook_revision: int | None = None  # the revision that shaped it (None: no playbook)
    ticket: Ticket | None = None  # set when this tells the destination of a privacy request


@dataclass(slots=True)
class LaneStatus:
    state: LaneState
    position: int
    held: int
    blocked_people: int
    spilled_people: int
    in_flight: int
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class Lane:
    def __init__(
        self,
        connection: Connection,
        destination: Destination,
        settings: Any,
        client: DestinationClient,
        log_: EventLog,
        store: Store,
        config: DeliveryConfig,
        tap: Tap,
        *,
        skip_recorded: bool = True,
        playbook: ActivePlaybook | None = None,
        privacy: PrivacyList | None = None,
    ) -> None:
        self.connection = connection
        self._privacy = privacy
        self.name = connection.name
        self.lane_id = f"connection:{connection.name}"
        self._destination = destination
        self._settings = settings
        self._client = client
        self._log = log_
        self._store = store
        self._config = config
        self._tap = tap
        self._sources = set(connection.sources)
        self._skip_recorded = skip_recorded
        self._playbook = playbook.playbook if playbook else None
        self._revision = playbook.revision if playbook else None
        self._barrier = Barrier(config.per_person_window)
        self._pending: dict[int, Pending] = {}
        self._skip: set[int] = set()
        self._cursor = 0
        self._position = 0
        self._records: list[DeliveryRecord] = []
        self._letters: list[DeadLetter] = []
        self._replayed: list[int] = []
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self.state = LaneState.RUNNING if connection.enabled else LaneState.PAUSED
        self.detail = ""
        self._probe_delay = CREDENTIALS_PROBE_FIRST
        self._probe_at = 0.0
        self._probing = False
        self._expedited_at = 0.0
        self._replay_ids = -1
        self._ready_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._m_received = metrics.DELIVERY_RECEIVED.labels(self.name)
        self._m_backlog = metrics.DELIVERY_BACKLOG.labels(self.name)
        self._m_age = metrics.DELIVERY_BACKLOG_AGE.labels(self.name)
        self._m_retries = metrics.DELIVERY_RETRIES.labels(self.name)
        self._m_latency = metrics.DELIVERY_LATENCY.labels(self.name)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lane:{self.name}")

    async def stop(self) -> None:
        """Finish what is in flight, record it, commit the position, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sends:
            await asyncio.wait(self._sends, timeout=15)
        for pending in self._pending.values():
            if pending.ticket is not None:  # not sent: the privacy service hands it on again
                pending.ticket.report(pending.ticket, "released", "")
        await self._flush()
        await self._client.aclose()
        self.state = LaneState.STOPPED

    def use_playbook(self, playbook: ActivePlaybook | None) -> None:
        """Shape the messages read from now on with this revision (no restart: messages
        already mapped and held keep the shape they were given)."""
        self._playbook = playbook.playbook if playbook else None
        self._revision = playbook.revision if playbook else None

    @property
    def playbook_revision(self) -> int | None:
        return self._revision

    def pause(self) -> None:
        self.state = LaneState.PAUSED
        self.detail = "paused by a user"

    def resume(self) -> None:
        self.state = LaneState.RUNNING
        self.detail = ""
        self._barrier.unblock_all()
        self._wake.set()

    def status(self) -> LaneStatus:
        return LaneStatus(
            state=self.state,
            position=self._position,
            held=len(self._pending),
            blocked_people=self._barrier.blocked_count(),
            spilled_people=len(self._barrier.spilled),
            in_flight=self._in_flight,
            detail=self.detail,
        )

    def replay(self, letters: list[DeadLetter]) -> int:
        """Send dead letters again, in order per person, behind that person's held messages."""
        for letter in letters:
            offset = self._replay_ids
            self._replay_ids -= 1
            self._admit(
                offset,
                letter.person,
                letter.payload,
                time.time(),
                dead_letter_id=letter.id,
                original_offset=letter.offset,
                force=True,
            )
        self._wake.set()
        return len(letters)

    def forward(self, ticket: Ticket) -> None:
        """Tell the destination of a privacy request about one person, in that person's order:
        after whatever of theirs is in flight has been answered, and (a deletion or a
        suppression) instead of what of theirs is still queued, which is withheld."""
        try:
            operations = privacy_operations(
                self._destination, ticket.action, ticket.person, self._settings, ticket.request_id
            )
        except Exception as exc:  # a destination bug must cost this ticket, not the lane
            log.exception("lane %s: privacy operations failed", self.name)
            ticket.report(ticket, FAILED, f"{type(exc).__name__}: {exc}")
            return
        if operations is None:
            ticket.report(ticket, NOT_SUPPORTED, "")
            return
        if not operations:
            ticket.report(ticket, DONE, "")
            return
        offset = self._replay_ids
        self._replay_ids -= 1
        self._pending[offset] = Pending(
            offset=offset,
            person=ticket.person,
            message_id=ticket.message_id,
            payload=b"",
            appended_at=time.time(),
            mapped=MapResult(operations=operations),
            ticket=ticket,
        )
        self._barrier.add_forced(ticket.person, offset)
        if ticket.action != "unsuppress":
            # What they wait behind is withheld at its turn: no reason to wait out its backoff.
            self._barrier.unblock(ticket.person)
        if self._ready_since is None:
            self._ready_since = time.monotonic()
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        self._position = await self._log.position(self.lane_id)
        self._cursor = self._position
        if self._skip_recorded:
            head = await self._log.head()
            if head > self._position:
                self._skip = await self._store.delivered_offsets(self.name, self._position, head)
        last_flush = time.monotonic()
        while not self._stopping:
            # Cleared before the work, not before the sleep: a send that finishes while we
            # read or flush must still wake the next sleep.
            self._wake.clear()
            try:
                await self._fill()
                self._dispatch()
                now = time.monotonic()
                if now - last_flush >= FLUSH_INTERVAL:
                    await self._flush()
                    last_flush = now
                await self._idle()
            except asyncio.CancelledError:
                raise
            except Exception:  # a lane must never die silently: log, wait, carry on
                log.exception("lane %s: unexpected error; continuing", self.name)
                await asyncio.sleep(1.0)

    async def _idle(self) -> None:
        """Sleep until there is something to do: new entries, a finished send, a timer."""
        # Fates reach the store (and the dashboard) within FLUSH_INTERVAL of being known.
        timeout = FLUSH_INTERVAL if self._records or self._letters or self._replayed else 1.0
        timer = self._barrier.next_timer()
        if timer is not None:
            timeout = min(timeout, max(0.0, timer - time.monotonic()))
        if self._ready_since is not None and self._can_send():
            linger = self._config.linger_ms / 1000
            timeout = min(timeout, max(0.0, self._ready_since + linger - time.monotonic()))
        if self.state is LaneState.CREDENTIALS_REJECTED:
            timeout = min(timeout, max(0.0, self._probe_at - time.monotonic()))
        if timeout <= 0:
            await asyncio.sleep(0)
            return
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if len(self._pending) < self._config.window and not self._stopping:
            waiters.append(asyncio.ensure_future(self._log.wait_for_new(self._cursor, timeout)))
        _, rest = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in rest:
            waiter.cancel()

    async def _fill(self) -> None:
        room = self._config.window - len(self._pending)
        if room > 0:
            entries = await self._log.read(self._cursor, min(room, READ_CHUNK))
            for entry in entries:
                self._take_entry(entry)
                self._cursor = entry.offset
        for person in self._barrier.wants_refill():
            after = self._barrier.spilled[person]
            limit = max(1, self._config.per_person_window // 2)
            entries = [
                e
                for e in await self._log.read_person(person, after, limit)
                if e.offset <= self._cursor
            ]
            admitted = [
                e.offset
                for e in entries
                if (not self._sources or e.source in self._sources)
                and self._admit_entry(e, queue=False)
            ]
            last_read = entries[-1].offset if entries else after
            self._barrier.add_recovered(
                person, admitted, last_read, complete=len(entries) < limit
            )

    def _take_entry(self, entry: Entry) -> None:
        if self._sources and entry.source not in self._sources:
            return
        if entry.person in self._barrier.spilled:
            return  # read back later, by person
        self._admit_entry(entry, queue=True)

    def _admit_entry(self, entry: Entry, *, queue: bool) -> bool:
        if entry.offset in self._skip:
            self._skip.discard(entry.offset)
            return False
        return self._admit(
            entry.offset, entry.person, entry.payload, entry.appended_at, queue=queue
        )

    def _admit(
        self,
        offset: int,
        person: str,
        payload: bytes,
        appended_at: float,
        *,
        dead_letter_id: int | None = None,
        original_offset: int = 0,
        queue: bool = True,
        force: bool = False,
    ) -> bool:
        """Shape and map a message and hold it; resolve it at once if there is nothing to send."""
        self._m_received.inc()
        playbook = self._playbook
        try:
            message = spec_message.decode(payload)
            withheld = self._privacy.verdict(message, person, offset) if self._privacy else None
            if withheld is not None:
                self._withhold(offset, person, message.message_id, withheld)
                return False
            if playbook is None:
                mapped = self._destination.map(message, self._settings)
            else:
                mapped = shape_and_map(playbook, self._destination, self._settings, message).result
            message_id = message.message_id
        except Exception as exc:  # a mapping bug must cost one message, not the lane
            log.exception("lane %s: cannot map message at offset %s", self.name, offset)
            mapped = MapResult(rejected=f"could not be mapped: {type(exc).__name__}: {exc}")
            message_id = _message_id_of(payload)
        pending = Pending(
            offset=offset,
            person=person,
            message_id=message_id,
            payload=payload,
            appended_at=appended_at,
            mapped=mapped,
            dead_letter_id=dead_letter_id,
            original_offset=original_offset,
            playbook_revision=self._revision,
        )
        if mapped.filtered is not None:
            self._resolve(pending, Fate.FILTERED, mapped.filtered)
            return False
        if mapped.rejected is not None:
            self._dead(pending, mapped.rejected, "", "")
            return False
        if force:
            self._barrier.add_forced(person, offset)
        elif queue and not self._barrier.add(person, offset):
            return False
        self._pending[offset] = pending
        if self._ready_since is None:
            self._ready_since = time.monotonic()
        return True

    # -- sending -----------------------------------------------------------------------------

    def _can_send(self) -> bool:
        # While probing rejected credentials, one request at a time finds out if they work now.
        limit = 1 if self._probing else self._config.concurrency
        return self.state is LaneState.RUNNING and self._in_flight < limit

    def _dispatch(self) -> None:
        if self.state is LaneState.CREDENTIALS_REJECTED and time.monotonic() >= self._probe_at:
            self.state = LaneState.RUNNING
            self._probing = True
        self._barrier.release_timers()
        if self._barrier.ready_count and self._ready_since is None:
            self._ready_since = 0.0  # freed from a retry wait: no linger
        linger = self._config.linger_ms / 1000
        while self._can_send() and self._barrier.ready_count:
            full = self._barrier.ready_count >= self._client.max_batch
            waited = self._ready_since is not None and (
                time.monotonic() - self._ready_since >= linger
            )
            if not (full or waited or self._stopping):
                return
            taken = self._barrier.take(self._client.max_batch)
            batch = [self._pending[offset] for _, offset in taken]
            self._ready_since = time.monotonic() if self._barrier.ready_count else None
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _withhold(
        self, offset: int, person: str, message_id: str, reason: str, held: Pending | None = None
    ) -> None:
        """A privacy request withdrew this message: a suppressed person's is filtered (and
        recorded so); a deleted person's leaves no record at all, since it would name them."""
        if reason == DELETED:
            if offset in self._pending:
                del self._pending[offset]
                self._barrier.done(person, offset)
            metrics.DELIVERY_MESSAGES.labels(self.name, Fate.FILTERED.value).inc()
            return
        pending = held or Pending(offset, person, message_id, b"", 0.0, MapResult())
        self._resolve(pending, Fate.FILTERED, reason)

    def _still_wanted(self, batch: list[Pending]) -> list[Pending]:
        """The batch without messages a privacy request withdrew while they waited."""
        privacy = self._privacy
        if privacy is None or not privacy.active:
            return batch
        wanted = []
        for pending in batch:
            if pending.ticket is not None:
                wanted.append(pending)
                continue
            reason = privacy.verdict(
                spec_message.decode(pending.payload), pending.person, pending.offset
            )
            if reason is None:
                wanted.append(pending)
            else:
                self._withhold(
                    pending.offset, pending.person, pending.message_id, reason, pending
                )
        return wanted

    async def _send(self, batch: list[Pending]) -> None:
        batch = self._still_wanted(batch)
        if not batch:
            self._in_flight -= 1
            self._wake.set()
            return
        operations = [op for p in batch for op in p.mapped.operations]
        started = time.monotonic()
        try:
            results = await self._client.send(operations)
        except Exception as exc:  # the client should classify everything; be safe if not
            log.exception("lane %s: send failed", self.name)
            results = [SendResult(Status.RETRY, reason=f"{type(exc).__name__}: {exc}")] * len(
                operations
            )
        finally:
            self._in_flight -= 1
        self._m_latency.observe(time.monotonic() - started)
        if len(results) != len(operations):
            reason = f"destination client answered {len(results)} results for {len(operations)}"
            results = [SendResult(Status.RETRY, reason=reason)] * len(operations)
        index = 0
        for pending in batch:
            count = len(pending.mapped.operations)
            self._settle(pending, results[index : index + count])
            index += count
        if self._barrier.ready_count:
            # People freed by this answer have waited long enough already: no linger for them.
            self._ready_since = 0.0
        self._wake.set()

    def _settle(self, pending: Pending, results: list[SendResult]) -> None:
        pending.attempts += 1
        last = results[-1] if results else SendResult(Status.OK)
        for status in (Status.AUTH, Status.RETRY, Status.PERMANENT):
            failed = [r for r in results if r.status is status]
            if failed:
                last = failed[0]
                break
        if last.status is Status.OK:
            fate = Fate.ADJUSTED if pending.mapped.adjustments else Fate.DELIVERED
            self._resolve(pending, fate, "; ".join(pending.mapped.adjustments), last)
            # The destination is answering: people backed off during an outage retry soon.
            now = time.monotonic()
            if self._barrier.blocked_count() and now - self._expedited_at > 0.5:
                self._expedited_at = now
                self._barrier.expedite(RECOVERED_RETRY_SPREAD, now)
            self._probe_delay = CREDENTIALS_PROBE_FIRST
            if self._probing:
                log.info("connection %s: credentials accepted again; delivery resumed", self.name)
            self._probing = False
            if self.state is LaneState.RUNNING:
                self.detail = ""
        elif last.status is Status.PERMANENT:
            self._dead(pending, last.reason, last.request, last.response)
        elif last.status is Status.AUTH:
            self._credentials_rejected(pending, last)
        else:
            self._retry(pending, last)

    def _retry(self, pending: Pending, result: SendResult) -> None:
        now = time.time()
        pending.first_failure = pending.first_failure or now
        window = self._config.retry_window_hours * 3600
        if now - pending.first_failure > window:
            self._dead(
                pending,
                f"gave up after {pending.attempts} attempts over"
                f" {self._config.retry_window_hours:g} h: {result.reason}",
                result.request,
                result.response,
            )
            return
        self._m_retries.inc()
        delay = retry_delay(pending.attempts, result.retry_after, self._config.max_backoff_s)
        self._barrier.retry_later(pending.person, delay)
        self._note(pending, Fate.RETRYING, f"attempt {pending.attempts}: {result.reason}", result)

    def _credentials_rejected(self, pending: Pending, result: SendResult) -> None:
        """The destination refuses the connection itself (credentials, region, address): stop
        burning retries, hold everything, and probe now and then until it works again."""
        if self.state is LaneState.RUNNING and not self._probing:  # news, not a failed probe
            log.warning("connection %s: %s; delivery on hold", self.name, result.reason)
        self.state = LaneState.CREDENTIALS_REJECTED
        self._probing = False
        self.detail = result.reason  # e.g. "credentials rejected (401)"
        self._probe_at = time.monotonic() + self._probe_delay
        self._probe_delay = min(self._probe_delay * 2, CREDENTIALS_PROBE_MAX)
        self._barrier.retry_later(pending.person, 0)
        self._note(pending, Fate.RETRYING, self.detail, result)

    # -- outcomes ----------------------------------------------------------------------------

    def _resolve(
        self, pending: Pending, fate: Fate, detail: str, result: SendResult | None = None
    ) -> None:
        if pending.offset in self._pending:
            del self._pending[pending.offset]
            self._barrier.done(pending.person, pending.offset)
        if pending.dead_letter_id is not None:
            self._replayed.append(pending.dead_letter_id)
        if pending.ticket is not None:
            self._note(pending, fate, detail, result)
            return
        metrics.DELIVERY_MESSAGES.labels(self.name, fate.value).inc()
        if fate is Fate.FILTERED:
            metrics.DELIVERY_FILTERED.labels(self.name, metrics.filtered_by(detail)).inc()
        self._note(pending, fate, detail, result)

    def _dead(self, pending: Pending, reason: str, request: str, response: str) -> None:
        if pending.ticket is not None:  # no dead letter: it would name the person
            self._resolve(pending, Fate.DEAD, reason)
            return
        self._letters.append(
            DeadLetter(
                id=0,
                connection=self.name,
                offset=pending.original_offset or max(pending.offset, 0),
                message_id=pending.message_id,
                person=pending.person,
                reason=reason,
                request=request,
                response=response,
                payload=pending.payload,
                created_at=time.time(),
            )
        )
        self._resolve(
            pending,
            Fate.DEAD,
            reason,
            SendResult(Status.PERMANENT, reason, None, request, response),
        )

    def _note(self, pending: Pending, fate: Fate, detail: str, result: SendResult | None) -> None:
        if pending.ticket is not None:  # reported to the request, never recorded: it names them
            status = {Fate.RETRYING: RETRYING, Fate.DEAD: FAILED}.get(fate, DONE)
            pending.ticket.report(pending.ticket, status, detail)
            return
        # A replayed dead letter is recorded under its original offset: its fate changes.
        offset = pending.original_offset or pending.offset
        if offset > 0:
            self._records.append(
                DeliveryRecord(
                    connection=self.name,
                    offset=offset,
                    message_id=pending.message_id,
                    person=pending.person,
                    fate=fate,
                    detail=detail,
                    attempts=pending.attempts,
                    request=result.request if result else "",
                    response=result.response if result else "",
                    playbook_revision=pending.playbook_revision,
                )
            )
        if self._tap.listening:
            self._tap.publish(
                {
                    "kind": "delivery",
                    "connection": self.name,
                    "message_id": pending.message_id,
                    "fate": fate.value,
                    "detail": detail,
                    "playbook_revision": pending.playbook_revision,
                    "operations": [msgspec.to_builtins(op) for op in pending.mapped.operations],
                    "request": result.request if result else "",
                    "response": result.response if result else "",
                }
            )

    async def _flush(self) -> None:
        """Write fates and dead letters, then move the committed position past what is resolved."""
        records, self._records = self._records, []
        letters, self._letters = self._letters, []
        replayed, self._replayed = self._replayed, []
        if letters:
            await self._store.add_dead_letters(letters)
        if records:
            await self._store.record(records)
        if replayed:
            await self._store.mark_replayed(replayed)
        watermark = self._watermark()
        if watermark > self._position:
            await self._log.commit_position(self.lane_id, watermark)
            self._position = watermark
        self._update_gauges()

    def _watermark(self) -> int:
        """Every offset at or below this is resolved for the lane."""
        lowest = self._cursor
        held = [o for o in self._pending if o > 0]
        if held:
            lowest = min(lowest, min(held) - 1)
        if self._barrier.spilled:
            lowest = min(lowest, min(self._barrier.spilled.values()))
        return lowest

    def _update_gauges(self) -> None:
        self._m_backlog.set(len(self._pending))
        oldest = min((p.appended_at for p in self._pending.values()), default=None)
        self._m_age.set(time.time() - oldest if oldest else 0.0)


def _message_id_of(payload: bytes) -> str:
    try:
        value = msgspec.json.decode(payload).get("messageId", "")
        return str(value)
    except Exception:
        return ""
