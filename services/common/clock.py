"""The current time as MongoDB stores it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Return the aware UTC time truncated to milliseconds, BSON's resolution.

    Truncating up front makes a value read back from MongoDB equal to the
    value that was written.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
