"""The ordering barrier: one person's messages go out one at a time, in the order received.

A person is *busy* while one of their messages is in flight and *blocked* while one waits for a
retry; either way their later messages wait behind it, while other people flow on. Only people
who are neither are *ready*, and a batch takes at most one message per ready person, so no two
messages of one person are ever in flight together (a destination may process requests
asynchronously; sending the identify before the event that needs the person is the only order
we can promise it).

Memory is bounded: a person may hold `per_person` messages here; the rest of their messages stay
in the log and are *spilled*, read back (by person) as the held ones drain.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import OrderedDict, deque

from turnout.delivery.work import HeldKey


class Barrier:
    def __init__(self, per_person: int) -> None:
        self.per_person = per_person
        # person -> the keys of their held work in order: log offsets, and replays or privacy
        # notices (`work.Extra`) queued among them.
        self._queues: dict[str, deque[HeldKey]] = {}
        # An ordered set, first come first served. OrderedDict, not dict: popping the oldest of
        # a plain dict again and again scans the holes left by earlier pops (quadratic).
        self._ready: OrderedDict[str, None] = OrderedDict()
        self._busy: set[str] = set()
        self._blocked: dict[str, float] = {}
        self._timers: list[tuple[float, str]] = []
        # person -> the last offset of theirs held here; later ones are still only in the log.
        self.spilled: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, person: str, offset: int) -> bool:
        """Queue a message; False when the person is spilled or at their cap (left in the log)."""
        if person in self.spilled:
            return False
        queue = self._queues.setdefault(person, deque())
        if len(queue) >= self.per_person:
            # Messages are added in log order, so every earlier one of theirs is held or done.
            self.spilled[person] = offset - 1
            return False
        queue.append(offset)
        if person not in self._busy and person not in self._blocked:
            self._ready[person] = None
        return True

    def add_forced(self, person: str, key: HeldKey) -> None:
        """Queue a replayed message beyond the cap: replays are few and chosen by a user."""
        self._queues.setdefault(person, deque()).append(key)
        if person not in self._busy and person not in self._blocked:
            self._ready[person] = None

    def add_recovered(
        self, person: str, offsets: list[int], last_read: int, complete: bool
    ) -> None:
        """Queue a spilled person's messages read back from the log (`offsets`, those of the
        entries up to `last_read` that need sending). `complete` means every message of theirs
        up to the lane's read cursor has now been read: they are no longer spilled."""
        queue = self._queues.setdefault(person, deque())
        queue.extend(offsets)
        if complete:
            self.spilled.pop(person, None)
        else:
            self.spilled[person] = last_read
        if queue and person not in self._busy and person not in self._blocked:
            self._ready[person] = None

    def wants_refill(self) -> list[str]:
        """Spilled people whose held queue has drained enough to read more of theirs."""
        return [p for p in self.spilled if len(self._queues.get(p, ())) <= self.per_person // 2]

    def release_timers(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        while self._timers and self._timers[0][0] <= now:
            _, person = heapq.heappop(self._timers)
            until = self._blocked.get(person)
            if until is not None and until <= now:
                del self._blocked[person]
                if self._queues.get(person) and person not in self._busy:
                    self._ready[person] = None

    def next_timer(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def take(self, limit: int) -> list[tuple[str, HeldKey]]:
        """Up to `limit` (person, key) pairs, one per ready person; they become busy."""
        taken: list[tuple[str, HeldKey]] = []
        while self._ready and len(taken) < limit:
            person, _ = self._ready.popitem(last=False)
            self._busy.add(person)
            taken.append((person, self._queues[person][0]))
        return taken

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def done(self, person: str, key: HeldKey) -> None:
        """The head message is resolved: drop it and let the person's next one go."""
        self._busy.discard(person)
        queue = self._queues.get(person)
        if queue and queue[0] == key:
            queue.popleft()
        if queue:
            if person not in self._blocked:
                self._ready[person] = None
        elif person not in self.spilled:
            self._queues.pop(person, None)

    def retry_later(self, person: str, delay: float) -> None:
        """The head message failed transiently: hold the person until `delay` has passed."""
        self._busy.discard(person)
        until = time.monotonic() + delay
        self._blocked[person] = until
        heapq.heappush(self._timers, (until, person))

    def expedite(self, within: float, now: float | None = None) -> int:
        """The destination answers again: whoever waits longer than `within` seconds gets a
        retry time spread over the next `within` seconds instead. Returns how many moved.

        Without this, a person whose backoff grew during an outage would wait out its full
        delay (up to minutes) after the destination has recovered."""
        now = time.monotonic() if now is None else now
        moved = 0
        for person, until in list(self._blocked.items()):
            if until > now + within:
                sooner = now + random.uniform(0, within)  # spread: no thundering herd
                self._blocked[person] = sooner
                heapq.heappush(self._timers, (sooner, person))
                moved += 1
        return moved

    def unblock(self, person: str) -> None:
        """This person may go now, whatever their backoff (their held messages are withdrawn)."""
        blocked = self._blocked.pop(person, None) is not None
        if blocked and self._queues.get(person) and person not in self._busy:
            self._ready[person] = None

    def unblock_all(self) -> None:
        """Credentials fixed or a user asked to retry now: everyone blocked may go."""
        for person in list(self._blocked):
            del self._blocked[person]
            if self._queues.get(person) and person not in self._busy:
                self._ready[person] = None
        self._timers.clear()

    def blocked_count(self) -> int:
        return len(self._blocked)
