"""Looking back at stored calls: the newest ones, or one person's, each with what every connection
made of it; and how a call is named when it is listed.

The log keeps every call for the retention window and the store keeps each connection's record
of it (its fate). The debugger, the person page and `turnout trace --user` read both through
here, so a page shows the same thing before and after a restart.

What a look-up costs:
- The newest calls: the log is read backwards from its head in steps of SCAN_STEP, through at
  most RECENT_SCAN offsets, so opening the debugger costs the same whatever the log holds (with
  narrow filters, older matching calls are not looked for).
- One person's calls: the log reads by person key (`EventLog.read_person`). The SQLite log
  searches each chunk's list of person keys inside SQLite and decodes only the chunks that hold
  the person (payloads of other chunks are not read); the NATS log reads the person's own subject,
  which JetStream indexes. The person key is the call's userId, or its anonymousId when it has no
  userId: a look-up by anonymousId therefore finds the calls made before the person was
  identified, and those that carry a userId too are found by that userId.
- The fates of a page of calls: one store query per FATES_PER_QUERY message ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from turnout.log.base import Entry, EventLog
from turnout.store.base import StateStore
from turnout.store.models import DeliveryRecord

logger = logging.getLogger("turnout.history")

RECENT_SCAN = 10_000  # offsets the newest-calls look-up reads back through, at most
SCAN_STEP = 500  # offsets read per step backwards
PERSON_PAGE = 200  # calls of one person per page, unless asked otherwise

Identity = Literal["userId", "anonymousId"]
IDENTITIES: tuple[Identity, ...] = ("userId", "anonymousId")

_decode = msgspec.json.decode


@dataclass(slots=True)
class StoredCall:
    """One call as the log keeps it, with every connection's record of it (none yet: pending)."""

    offset: int
    appended_at: float
    message: dict[str, Any]  # as stored: the tracking spec's camelCase fields
    fates: list[DeliveryRecord]

    @property
    def message_id(self) -> str:
        return str(self.message.get("messageId") or "")


@dataclass(slots=True)
class PersonCalls:
    """A page of one person's calls, oldest first."""

    identity: Identity
    value: str
    calls: list[StoredCall]
    more_after: int | None  # the offset to read on from when more calls follow, else None


class History:
    def __init__(self, log_: EventLog, store: StateStore) -> None:
        self._log = log_
        self._store = store

    async def recent(
        self, admits: Callable[[dict[str, Any]], bool], limit: int, scan: int = RECENT_SCAN
    ) -> list[StoredCall]:
        """The newest `limit` calls that `admits`, oldest first, among the newest `scan`
        offsets of the log."""
        head = await self._log.head()
        floor = max(head - scan, 0)
        windows: list[list[tuple[Entry, dict[str, Any]]]] = []  # newest window first
        found = 0
        upper = head
        while upper > floor and found < limit:
            lower = max(upper - SCAN_STEP, floor)
            entries = await self._log.read(lower, upper - lower)
            window = [
                (entry, message)
                for entry in entries
                if entry.offset <= upper  # past a gap, a read may return newer offsets
                and (message := _message(entry)) is not None
                and admits(message)
            ]
            windows.append(window)
            found += len(window)
            upper = lower
        matched = [pair for window in reversed(windows) for pair in window]
        return await self._with_fates(matched[-limit:] if limit else [])

    async def person(
        self, identity: Identity, value: str, *, after: int = 0, limit: int = PERSON_PAGE
    ) -> PersonCalls:
        """The calls whose `identity` (userId or anonymousId) is `value`, in the order received,
        from offset `after` on, at most `limit` of them."""
        matched: list[tuple[Entry, dict[str, Any]]] = []
        cursor = after
        while len(matched) <= limit:
            wanted = limit + 1 - len(matched)
            entries = await self._log.read_person(value, cursor, wanted)
            for entry in entries:
                message = _message(entry)
                if message is not None and message.get(identity) == value:
                    matched.append((entry, message))
            if len(entries) < wanted:
                break
            cursor = entries[-1].offset
        more_after = matched[limit - 1][0].offset if len(matched) > limit and limit else None
        calls = await self._with_fates(matched[:limit])
        return PersonCalls(identity, value, calls, more_after)

    async def _with_fates(self, pairs: Sequence[tuple[Entry, dict[str, Any]]]) -> list[StoredCall]:
        calls = [StoredCall(e.offset, e.appended_at, message, []) for e, message in pairs]
        if not calls:
            return calls
        by_key = {(call.message_id, call.offset): call for call in calls}
        for record in await self._store.fates([call.message_id for call in calls]):
            call = by_key.get((record.message_id, record.offset))
            if call is not None:  # else: another stored call that reused the messageId
                call.fates.append(record)
        return calls


def _message(entry: Entry) -> dict[str, Any] | None:
    """The stored call as JSON; None (and a log line) for a payload that does not decode."""
    try:
        message = _decode(entry.payload)
    except msgspec.DecodeError:
        logger.warning("log offset %d: stored payload is not JSON; skipped", entry.offset)
        return None
    return message if isinstance(message, dict) else None


def call_name(message: dict[str, Any]) -> str:
    """The name a call is listed and filtered by: the event, the page or screen name, and for a
    page without a name its URL (`context.page.url`, else `properties.url`)."""
    name = message.get("event") or message.get("name")
    if name:
        return str(name)
    if message.get("type") == "page":
        url = _get(_get(message, "context"), "page", "url") or _get(message, "properties", "url")
        if url:
            return str(url)
    return ""


def call_label(message: dict[str, Any]) -> str:
    """A short description of any call for a list: its name, else what identifies it."""
    name = call_name(message)
    if name:
        return name
    kind = str(message.get("type") or "")
    if kind == "identify":
        email = _get(message, "traits", "email") or _get(message, "context", "traits", "email")
        return f"identify · {email}" if email else "identify"
    if kind == "group":
        return f"group {message.get('groupId') or ''}".strip()
    if kind == "alias":
        return f"alias of {message.get('previousId') or ''}".strip()
    return kind


def _get(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]...`, or None where a level is missing or not an object (the
    free-form parts of a call may hold anything)."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
