"""The spec's four timestamps, and correcting a device's clock with them.

`timestamp = receivedAt - (sentAt - originalTimestamp)`: the time the device says passed between
the call and its sending, measured back from the server's clock. Stored times are ISO-8601 UTC
with milliseconds and a `Z`, the form every Segment SDK and destination reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

from turnout.spec.incoming import InvalidMessage


def parse(value: str, field: str) -> datetime:
    """ISO-8601 as the SDKs write it (`Z`, offsets, fractions); naive times are UTC."""
    try:
        parsed = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        raise InvalidMessage(
            "invalid_timestamp", f"{field}: {value[:40]!r} is not an ISO-8601 timestamp"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def corrected(received_at: datetime, sent_at: datetime | None, original: datetime) -> datetime:
    """The device's elapsed time, on the server's clock; without `sentAt`, the original."""
    if sent_at is None:
        return original
    try:
        return received_at - (sent_at - original)
    except OverflowError:  # a year-1 original sent in year 9999: nothing sensible to correct
        return original
