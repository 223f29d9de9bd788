"""The credentials probe: how a lane on hold because its destination refused the connection
itself finds out when the connection works again.

An answer that refuses the connection (credentials rejected, a redirect to another region, an
address with no such endpoint: `Status.AUTH`) would be the same for every message, so the lane
stops sending rather than burn retries or dead-letter its backlog. It is shown as
credentials_rejected, holds everything (the backlog stays in the log), and after a while lets
one request through, alone: that request is the probe. Accepted, the lane sends at full
concurrency again; refused, the next probe waits twice as long, up to PROBE_MAX. Settings fixed
by a user restart the lane, which resumes at once; the probe is for a fix made elsewhere (a key
enabled again in the destination's own settings, a proxy repaired).
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("turnout.delivery")

PROBE_FIRST = 15.0  # seconds before the first probe after the connection was refused
PROBE_MAX = 300.0  # the longest wait between probes


class CredentialsProbe:
    def __init__(self, connection: str) -> None:
        self._connection = connection
        self._delay = PROBE_FIRST
        self._at = 0.0
        self.probing = False  # the lane's one request in flight is the probe

    def send_limit(self, concurrency: int) -> int:
        """Requests the lane may have in flight: one while probing, to find out if it works."""
        return 1 if self.probing else concurrency

    def due(self, now: float) -> bool:
        """Whether the wait is over: the lane runs again, and its next request probes."""
        if now < self._at:
            return False
        self.probing = True
        return True

    def seconds_left(self, now: float) -> float:
        return max(0.0, self._at - now)

    def refused(self, reason: str, *, was_running: bool) -> None:
        """The destination refused the connection: wait before probing, longer each time."""
        if was_running and not self.probing:  # news, not a failed probe
            logger.warning("connection %s: %s; delivery on hold", self._connection, reason)
        self.probing = False
        self._at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, PROBE_MAX)

    def accepted(self) -> None:
        """A request went through: the connection works (again)."""
        self._delay = PROBE_FIRST
        if self.probing:
            logger.info(
                "connection %s: credentials accepted again; delivery resumed", self._connection
            )
        self.probing = False
