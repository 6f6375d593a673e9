from __future__ import annotations

from datetime import UTC, datetime


def epoch(value: datetime) -> float:
    """API timestamps are epoch seconds (JSON numbers), millisecond precision as MongoDB stores."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp(), 3)


def now() -> datetime:
    # MongoDB keeps milliseconds; truncating here keeps what we return equal to what we store.
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)
