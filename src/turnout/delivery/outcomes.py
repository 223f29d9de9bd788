"""What became of each message a lane handled, recorded everywhere it is read.

A lane decides a message's fate; this records it: the delivery record (the dashboard's
overview, traces, and the list a restarted lane skips), the dead letter with its request and
response, the replayed dead letter marked done, the metrics, the debugger's live tap, and, for
a privacy notice, its request's ticket. Records and dead letters are gathered in memory and
written in batches by `write`, which the lane calls before it commits its position: a message
is only ever passed by the position once its fate is in the store.

A privacy notice is reported to its request and never recorded: a record would name the
person the request is about. Nor is the fate of a call whose person was deleted while it was
in flight or waiting to be written: the deletion may have erased the store already, and the
record would bring them back.
"""

from __future__ import annotations

import time

import msgspec

from turnout import metrics
from turnout.delivery.work import Pending
from turnout.destinations.base import SendResult, Status
from turnout.privacy.forwarding import DONE, FAILED, RETRYING
from turnout.privacy.suppression import PrivacyList
from turnout.store.base import StateStore
from turnout.store.models import DeadLetter, DeliveryRecord, Fate
from turnout.tap import Tap


class Outcomes:
    """One connection's outcomes, kept until the lane's next flush writes them."""

    def __init__(
        self, connection: str, store: StateStore, tap: Tap, privacy: PrivacyList | None = None
    ) -> None:
        self._connection = connection
        self._store = store
        self._tap = tap
        self._privacy = privacy
        self._records: list[DeliveryRecord] = []
        self._letters: list[DeadLetter] = []
        self._replayed: list[int] = []

    @property
    def unwritten(self) -> bool:
        """Whether fates wait to be written (the lane then flushes sooner)."""
        return bool(self._records or self._letters or self._replayed)

    def resolved(
        self, pending: Pending, fate: Fate, detail: str, result: SendResult | None = None
    ) -> None:
        """A final fate: delivered, adjusted, filtered or dead."""
        if pending.replay_of is not None:
            self._replayed.append(pending.replay_of)
        if pending.ticket is None:
            metrics.DELIVERY_MESSAGES.labels(self._connection, fate.value).inc()
            if fate is Fate.FILTERED:
                metrics.DELIVERY_FILTERED.labels(
                    self._connection, metrics.filtered_by(detail)
                ).inc()
        self.note(pending, fate, detail, result)

    def dead(self, pending: Pending, reason: str, request: str, response: str) -> None:
        """It can never be delivered: a dead letter keeps it, with what was sent and answered."""
        if pending.ticket is not None or pending.offset is None:
            self.resolved(pending, Fate.DEAD, reason)  # no dead letter: it would name the person
            return
        self._letters.append(
            DeadLetter(
                id=0,
                connection=self._connection,
                offset=pending.offset,
                message_id=pending.message_id,
                person=pending.person,
                reason=reason,
                request=request,
                response=response,
                payload=pending.payload,
                created_at=time.time(),
            )
        )
        self.resolved(
            pending,
            Fate.DEAD,
            reason,
            SendResult(Status.PERMANENT, reason, None, request, response),
        )

    def withdrawn(self) -> None:
        """A deleted person's message, dropped: counted as filtered, and recorded nowhere,
        since a record would name them."""
        metrics.DELIVERY_MESSAGES.labels(self._connection, Fate.FILTERED.value).inc()

    def note(self, pending: Pending, fate: Fate, detail: str, result: SendResult | None) -> None:
        """Record where the message stands now (a final fate, or retrying) and show it live."""
        if pending.ticket is not None:
            status = {Fate.RETRYING: RETRYING, Fate.DEAD: FAILED}.get(fate, DONE)
            pending.ticket.report(pending.ticket, status, detail)
            return
        if pending.offset is not None:
            # A replayed dead letter is recorded at its original offset: its fate there changes.
            self._records.append(
                DeliveryRecord(
                    connection=self._connection,
                    offset=pending.offset,
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
                    "connection": self._connection,
                    "message_id": pending.message_id,
                    "fate": fate.value,
                    "detail": detail,
                    "playbook_revision": pending.playbook_revision,
                    "rules_applied": list(pending.rules_applied),
                    "operations": [msgspec.to_builtins(op) for op in pending.mapped.operations],
                    "request": result.request if result else "",
                    "response": result.response if result else "",
                }
            )

    async def write(self) -> None:
        """Write what was gathered: dead letters, then fates, then replayed letters marked."""
        records, self._records = self._records, []
        letters, self._letters = self._letters, []
        replayed, self._replayed = self._replayed, []
        privacy = self._privacy
        if privacy is not None and privacy.deleted:  # checked last thing before writing
            records = [r for r in records if not privacy.erased(r.person, r.offset)]
            letters = [d for d in letters if not privacy.erased(d.person, d.offset)]
        if letters:
            await self._store.add_dead_letters(letters)
        if records:
            await self._store.record(records)
        if replayed:
            await self._store.mark_replayed(replayed)
