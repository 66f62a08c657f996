"""Days and Unix times in the site's timezone: windows open and close at local midnight."""

from __future__ import annotations

import datetime as dt

__all__ = ["day_end", "day_start", "local_date"]


def day_start(day: dt.date, zone: dt.tzinfo) -> int:
    """Unix time of the first second of ``day`` in ``zone``."""
    return int(dt.datetime.combine(day, dt.time.min, zone).timestamp())


def day_end(day: dt.date, zone: dt.tzinfo) -> int:
    """Unix time of the last second of ``day`` in ``zone``."""
    return int(dt.datetime.combine(day, dt.time.max, zone).timestamp())


def local_date(timestamp: float, zone: dt.tzinfo) -> dt.date:
    """The day in ``zone`` of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, zone).date()
