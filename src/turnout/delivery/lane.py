"""A lane: one connection's reader of the log, and the only thing that sends to its destination.

    read the log in order ─▶ map each message ─▶ barrier (per-person order) ─▶ batch
        ─▶ send within the rate limit ─▶ record each message's fate ─▶ commit the position

The committed position only passes a message once it is resolved for this connection
(delivered, filtered or dead-lettered), so after a crash the lane resumes from it and loses
nothing; messages it sends again carry the same dedupe ids. Fates are recorded before the
position moves, and a restarted lane skips messages whose fate is already recorded.

The lane keeps the loop and its decisions; beside it, `shaping.py` applies the playbook,
`outcomes.py` records each message's fate, `probe.py` finds out when a refused connection works
again, and `work.py` says what the lane holds (log messages, replayed dead letters, privacy
notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from turnout import metrics
from turnout.config import DeliveryConfig
from turnout.delivery.backoff import retry_delay
from turnout.delivery.barrier import Barrier
from turnout.delivery.outcomes import Outcomes
from turnout.delivery.probe import CredentialsProbe
from turnout.delivery.shaping import ActivePlaybook, map_shaped
from turnout.delivery.work import Extra, HeldKey, Pending
from turnout.destinations.base import (
    Destination,
    DestinationClient,
    MapResult,
    SendResult,
    Status,
    privacy_operations,
)
from turnout.log.base import Entry, EventLog
from turnout.privacy.forwarding import DONE, FAILED, NOT_SUPPORTED, Ticket
from turnout.privacy.suppression import DELETED, PrivacyList
from turnout.spec import message as spec_message
from turnout.store.base import StateStore
from turnout.store.models import Connection, DeadLetter, Fate
from turnout.tap import Tap

logger = logging.getLogger("turnout.delivery")

READ_CHUNK = 1000
FLUSH_INTERVAL = 0.1  # seconds between writes of fates and the position
RECOVERED_RETRY_SPREAD = 2.0  # seconds over which backed-off people retry once sends succeed


class LaneState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # by a user
    CREDENTIALS_REJECTED = "credentials_rejected"
    STOPPED = "stopped"


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
        store: StateStore,
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
        self.lane_id = lane_id(connection.name)
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
        self._pending: dict[HeldKey, Pending] = {}
        self._skip: set[int] = set()
        self._cursor = 0
        self._position = 0
        self._outcomes = Outcomes(self.name, store, tap, privacy)
        self._probe = CredentialsProbe(self.name)
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self.state = LaneState.RUNNING if connection.enabled else LaneState.PAUSED
        self.detail = ""
        self._expedited_at = 0.0
        self._extra_keys = itertools.count(1)  # keys of work from outside the log
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
            self._admit(
                Extra(next(self._extra_keys)),
                letter.offset,
                letter.person,
                letter.payload,
                time.time(),
                replay_of=letter.id,
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
            logger.exception("lane %s: privacy operations failed", self.name)
            ticket.report(ticket, FAILED, f"{type(exc).__name__}: {exc}")
            return
        if operations is None:
            ticket.report(ticket, NOT_SUPPORTED, "")
            return
        if not operations:
            ticket.report(ticket, DONE, "")
            return
        key = Extra(next(self._extra_keys))
        self._pending[key] = Pending(
            key=key,
            offset=None,  # a notice holds no place in the log
            person=ticket.person,
            message_id=ticket.message_id,
            payload=b"",
            appended_at=time.time(),
            mapped=MapResult(operations=operations),
            ticket=ticket,
        )
        self._barrier.add_forced(ticket.person, key)
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
                logger.exception("lane %s: unexpected error; continuing", self.name)
                await asyncio.sleep(1.0)

    async def _idle(self) -> None:
        """Sleep until there is something to do: new entries, a finished send, a timer."""
        # Fates reach the store (and the dashboard) within FLUSH_INTERVAL of being known.
        timeout = FLUSH_INTERVAL if self._outcomes.unwritten else 1.0
        timer = self._barrier.next_timer()
        if timer is not None:
            timeout = min(timeout, max(0.0, timer - time.monotonic()))
        if self._ready_since is not None and self._can_send():
            linger = self._config.linger_ms / 1000
            timeout = min(timeout, max(0.0, self._ready_since + linger - time.monotonic()))
        if self.state is LaneState.CREDENTIALS_REJECTED:
            timeout = min(timeout, self._probe.seconds_left(time.monotonic()))
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
            entry.offset,  # held under its own offset, which the position counts
            entry.offset,
            entry.person,
            entry.payload,
            entry.appended_at,
            queue=queue,
        )

    def _admit(
        self,
        key: HeldKey,
        offset: int,
        person: str,
        payload: bytes,
        appended_at: float,
        *,
        replay_of: int | None = None,
        queue: bool = True,
    ) -> bool:
        """Shape and map a message and hold it; resolve it at once if there is nothing to send.

        A replayed dead letter (`replay_of`) goes behind whatever of its person is held, even
        beyond the per-person cap: replays are few and chosen by a user."""
        self._m_received.inc()
        playbook = self._playbook
        rules_applied: Sequence[str] = ()
        try:
            message = spec_message.decode(payload)
            withheld = self._privacy.verdict(message, person, offset) if self._privacy else None
            if withheld is not None:
                unsent = Pending(
                    key=key,
                    offset=offset,
                    person=person,
                    message_id=message.message_id,
                    payload=b"",
                    appended_at=0.0,
                    mapped=MapResult(),
                    replay_of=replay_of,
                )
                self._withhold(unsent, withheld)
                return False
            if playbook is None:
                mapped = self._destination.map(message, self._settings)
            else:
                mapped, shaped = map_shaped(playbook, self._destination, self._settings, message)
                rules_applied = shaped.rules_applied
            message_id = message.message_id
        except Exception as exc:  # a mapping bug must cost one message, not the lane
            logger.exception("lane %s: cannot map message at offset %s", self.name, offset)
            mapped = MapResult(rejected=f"could not be mapped: {type(exc).__name__}: {exc}")
            message_id = _message_id_of(payload)
        pending = Pending(
            key=key,
            offset=offset,
            person=person,
            message_id=message_id,
            payload=payload,
            appended_at=appended_at,
            mapped=mapped,
            replay_of=replay_of,
            playbook_revision=self._revision,
            rules_applied=rules_applied,
        )
        if mapped.filtered is not None:
            self._resolve(pending, Fate.FILTERED, mapped.filtered)
            return False
        if mapped.rejected is not None:
            self._dead(pending, mapped.rejected, "", "")
            return False
        if replay_of is not None:
            self._barrier.add_forced(person, key)
        elif queue and not self._barrier.add(person, offset):
            return False
        self._pending[key] = pending
        if self._ready_since is None:
            self._ready_since = time.monotonic()
        return True

    # -- sending -----------------------------------------------------------------------------

    def _can_send(self) -> bool:
        limit = self._probe.send_limit(self._config.concurrency)
        return self.state is LaneState.RUNNING and self._in_flight < limit

    def _dispatch(self) -> None:
        if self.state is LaneState.CREDENTIALS_REJECTED and self._probe.due(time.monotonic()):
            self.state = LaneState.RUNNING
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
            batch = [self._pending[key] for _, key in taken]
            self._ready_since = time.monotonic() if self._barrier.ready_count else None
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _withhold(self, pending: Pending, reason: str) -> None:
        """A privacy request withdrew this message: a suppressed person's is filtered (and
        recorded so); a deleted person's leaves no record at all, since it would name them."""
        if reason == DELETED:
            self._release(pending)
            self._outcomes.withdrawn()
            return
        self._resolve(pending, Fate.FILTERED, reason)

    def _still_wanted(self, batch: list[Pending]) -> list[Pending]:
        """The batch without messages a privacy request withdrew while they waited."""
        privacy = self._privacy
        if privacy is None or not privacy.active:
            return batch
        wanted = []
        for pending in batch:
            if pending.ticket is not None or pending.offset is None:  # the request's own notice
                wanted.append(pending)
                continue
            reason = privacy.verdict(
                spec_message.decode(pending.payload), pending.person, pending.offset
            )
            if reason is None:
                wanted.append(pending)
            else:
                self._withhold(pending, reason)
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
            logger.exception("lane %s: send failed", self.name)
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
            self._probe.accepted()
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
        detail = f"attempt {pending.attempts}: {result.reason}"
        self._outcomes.note(pending, Fate.RETRYING, detail, result)

    def _credentials_rejected(self, pending: Pending, result: SendResult) -> None:
        """The destination refuses the connection itself (credentials, region, address): hold
        everything until the probe finds that it works again (`probe.py`)."""
        self._probe.refused(result.reason, was_running=self.state is LaneState.RUNNING)
        self.state = LaneState.CREDENTIALS_REJECTED
        self.detail = result.reason  # e.g. "credentials rejected (401)"
        self._barrier.retry_later(pending.person, 0)
        self._outcomes.note(pending, Fate.RETRYING, self.detail, result)

    # -- resolving ---------------------------------------------------------------------------

    def _release(self, pending: Pending) -> None:
        """No longer held: the person's next message may go."""
        if pending.key in self._pending:
            del self._pending[pending.key]
            self._barrier.done(pending.person, pending.key)

    def _resolve(
        self, pending: Pending, fate: Fate, detail: str, result: SendResult | None = None
    ) -> None:
        self._release(pending)
        self._outcomes.resolved(pending, fate, detail, result)

    def _dead(self, pending: Pending, reason: str, request: str, response: str) -> None:
        self._release(pending)
        self._outcomes.dead(pending, reason, request, response)

    async def _flush(self) -> None:
        """Write fates and dead letters, then move the committed position past what is resolved.

        The position is worked out before the writes: a message resolved while they are under
        way has its fate written by the next flush, and only then may the position pass it."""
        watermark = self._watermark()
        await self._outcomes.write()
        if watermark > self._position:
            await self._log.commit_position(self.lane_id, watermark)
            self._position = watermark
        self._update_gauges()

    def _watermark(self) -> int:
        """Every offset at or below this is resolved for the lane."""
        lowest = self._cursor
        # Only work read from the log holds the position back; its key is its offset.
        held = [key for key in self._pending if isinstance(key, int)]
        if held:
            lowest = min(lowest, min(held) - 1)
        if self._barrier.spilled:
            lowest = min(lowest, min(self._barrier.spilled.values()))
        return lowest

    def _update_gauges(self) -> None:
        self._m_backlog.set(len(self._pending))
        oldest = min((p.appended_at for p in self._pending.values()), default=None)
        self._m_age.set(time.time() - oldest if oldest else 0.0)


def lane_id(connection: str) -> str:
    """The name under which the log keeps a connection's position, in every partition."""
    return f"connection:{connection}"


def _message_id_of(payload: bytes) -> str:
    try:
        value = msgspec.json.decode(payload).get("messageId", "")
        return str(value)
    except Exception:
        return ""
