"""The delivery overview of one connection: where its messages stand, the rate over time, and
why the failing ones fail.

The funnel counts messages by where each stands now (one per message); the chart counts fates as
they were recorded per minute (so a message retried three times shows three retries). Failure
reasons are grouped with attempt numbers stripped, so one outage reads as one reason.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from turnout.store.base import StateStore

WINDOWS: dict[str, float] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 24 * 3600,
}
DEFAULT_WINDOW = "1h"
CHART_BUCKETS = 60
FUNNEL = ("received", "filtered", "adjusted", "delivered", "retrying", "dead_lettered")
CHARTED = ("delivered", "adjusted", "filtered", "retrying", "dead_lettered")
SAMPLES_PER_REASON = 3

_ATTEMPT = re.compile(r"^attempt \d+: ")
_REPEAT = re.compile(r"^(.+?): (?=\1)")  # "credentials rejected: credentials rejected (401)"


@dataclass(slots=True)
class Reason:
    fate: str
    reason: str
    count: int = 0
    last_at: float = 0.0
    samples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Overview:
    window: str
    since: float
    funnel: dict[str, int]
    replayed: int
    bucket_seconds: int
    series: dict[str, list[int]]  # fate -> count per bucket, oldest first
    reasons: list[Reason]
    # The filtered messages by who filtered them: consent, playbook (a rule or function) or
    # destination (its own filters); they add up to the funnel's `filtered`.
    filtered_by: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "since": self.since,
            "funnel": self.funnel,
            "filtered_by": self.filtered_by,
            "replayed": self.replayed,
            "bucket_seconds": self.bucket_seconds,
            "series": self.series,
            "reasons": [
                {
                    "fate": r.fate,
                    "reason": r.reason,
                    "count": r.count,
                    "last_at": r.last_at,
                    "sample_message_ids": r.samples,
                }
                for r in self.reasons
            ],
        }


def window_seconds(window: str) -> float:
    return WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])


async def overview(store: StateStore, connection: str, window: str = DEFAULT_WINDOW) -> Overview:
    window = window if window in WINDOWS else DEFAULT_WINDOW
    now = time.time()
    span = window_seconds(window)
    since = now - span
    fates = await store.current_fates(connection, since)
    funnel = {name: fates.get(name, 0) for name in FUNNEL[1:]}
    funnel = {"received": sum(fates.values()), **funnel}
    bucket = max(60, int(span // CHART_BUCKETS) // 60 * 60)
    first_minute = int(since // 60)
    buckets = int(span // bucket) + 1
    series = {fate: [0] * buckets for fate in CHARTED}
    for minute, fate, count in await store.fate_series(connection, since):
        index = min(buckets - 1, (minute - first_minute) * 60 // bucket)
        if fate in series and index >= 0:
            series[fate][index] += count
    return Overview(
        window=window,
        since=since,
        funnel=funnel,
        replayed=await store.replayed_count(connection, since),
        bucket_seconds=bucket,
        series=series,
        reasons=group_reasons(await store.failure_details(connection, since)),
        filtered_by={
            "consent": 0,
            "playbook": 0,
            "destination": 0,
            **await store.filtered_by(connection, since),
        },
    )


def group_reasons(rows: list[tuple[str, str, str, float]]) -> list[Reason]:
    """Group (fate, detail, message_id, at) rows, newest first, into reasons by frequency."""
    grouped: dict[tuple[str, str], Reason] = {}
    for fate, detail, message_id, at in rows:
        text = _REPEAT.sub("", _ATTEMPT.sub("", detail)) or "(no reason recorded)"
        reason = grouped.setdefault((fate, text), Reason(fate, text))
        reason.count += 1
        reason.last_at = max(reason.last_at, at)
        if len(reason.samples) < SAMPLES_PER_REASON and message_id not in reason.samples:
            reason.samples.append(message_id)
    return sorted(grouped.values(), key=lambda r: (-r.count, r.reason))
