"""Emulator settings, including every behaviour the reference marks UNCONFIRMED.

Customer.io documents some behaviours only vaguely (what happens to an event for an unknown
person, whether the Track API ever answers 429, whether a v2 batch may answer 200 with errors).
Each such choice is a switch here, so a test can pin the behaviour it depends on and a benchmark
can try both. The struct is mutable on purpose: ``POST /_emulator/config`` and
``CustomerIOEmulator.configure`` change it while the server runs.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

KIB = 1024


class EmulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the emulated Customer.io workspace behaves."""

    site_id: str = "site-id"
    api_key: str = "api-key"

    region: Literal["us", "eu"] = "us"
    # The workspace id that GET /api/v1/accounts/region reports.
    environment_id: int = 1

    # UNCONFIRMED (ref §10): an event/page/screen, device or relationship for a person who does not
    # exist yet either creates the person ("create") or is dropped ("drop").
    unknown_person_events: Literal["create", "drop"] = "create"

    # UNCONFIRMED (ref §6.2, §12.9): the real API's overload behaviour is undocumented. When on, a
    # token bucket of `rate_limit_requests` per `rate_limit_period` seconds answers 429 with
    # Retry-After once empty.
    rate_limit_enabled: bool = False
    rate_limit_requests: int = 3000
    rate_limit_period: float = 3.0

    # UNCONFIRMED (ref §5.4): the status of a v2 batch where some items failed. 207 is documented;
    # 200-with-errors is what some third parties defend against.
    batch_errors_status: Literal[207, 200] = 207

    # Anonymous events carrying an anonymous_id that an identify claimed are attached to that person
    # when they arrive up to this many seconds after the identify (ref §4.5: five minutes).
    anonymous_merge_window: float = 300.0

    # The dedupe window is undocumented (ref §8). None remembers every event id forever; a number
    # forgets ids older than that many seconds, which bounds memory in long benchmarks.
    dedupe_window: float | None = None

    # "Allow updates to email using ID": an identify addressed by id may change the person's email.
    allow_email_update_by_id: bool = True

    # v2 size limits in bytes (ref §5.3: entity < 32 KB, batch < 500 KB, item <= 32 KB).
    v2_entity_limit: int = 32 * KIB
    v2_batch_limit: int = 500 * KIB
    v2_item_limit: int = 32 * KIB

    # Seconds between accepting a call and applying it to the read model. The real API applies
    # asynchronously (read-back took ~10 s); 0 applies before answering, which tests want.
    processing_delay: float = 0.0

    # Memory bounds for long benchmarks: the request record keeps the newest `record_limit`
    # requests (counters stay exact); each person keeps the newest `activity_limit` activities.
    record_limit: int = 10_000
    record_bodies: bool = True
    activity_limit: int | None = None

    # How long a "hang" fault holds a request before answering 504 (if the client is still there).
    hang_seconds: float = 30.0

    def region_url(self) -> str:
        """The Track API base URL of this workspace's region (ref §1)."""
        return "https://track-eu.customer.io" if self.region == "eu" else "https://track.customer.io"

    def updated(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A validated copy with `changes` applied; unknown keys or bad types raise
        ``msgspec.ValidationError``."""
        merged = msgspec.structs.asdict(self)
        merged.update(changes)
        return msgspec.convert(merged, EmulatorConfig)
