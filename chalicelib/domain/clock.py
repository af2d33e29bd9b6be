"""The one clock: what time it is, how a time is written, and which Beijing day it falls on.

Every "now" in the service comes from ``now()``. A use case may be run against another clock
(``use(clock)``, e.g. a test's fixed time); the edges of a run pass theirs in through
``services.edges``. Times are stored as UTC ISO-8601 with microseconds and a ``Z``; WeChat's
bills, days and staff days are Beijing time (UTC+8, no daylight saving).
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterator

BEIJING = timezone(timedelta(hours=8))
# The first day any record of the service can fall on: a date or time before it is a mistake
# (and far enough from datetime's year 1 that no conversion between zones can overflow).
EARLIEST_DAY = date(2000, 1, 1)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
_CALENDAR_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def system_now() -> datetime:
    return datetime.now(timezone.utc)


_source: ContextVar[Callable[[], datetime]] = ContextVar("clock", default=system_now)


def now() -> datetime:
    """The current time (UTC), from the clock in use."""
    return _source.get()()


@contextmanager
def use(clock: Callable[[], datetime]) -> Iterator[None]:
    """Read time from ``clock`` inside the block (this thread or task only)."""
    token = _source.set(clock)
    try:
        yield
    finally:
        _source.reset(token)


def iso(moment: datetime) -> str:
    """A stored time: UTC, microseconds, ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str | None) -> datetime | None:
    """An ISO-8601 time (``...Z``, ``+08:00``; a time without an offset is UTC), or None when
    there is none or it cannot be read."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def beijing_date(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def beijing_day(moment: datetime) -> str:
    """The Beijing calendar day of ``moment`` (``YYYY-MM-DD``)."""
    return beijing_date(moment).isoformat()


def beijing_day_of(text: str | None, default: datetime | None = None) -> str | None:
    """The Beijing day of a written time, else of ``default`` (None when neither is known)."""
    moment = parse(text) or default
    return beijing_day(moment) if moment is not None else None


def calendar_day(text) -> date | None:
    """The calendar date ``text`` writes as ``YYYY-MM-DD`` (nothing else: not an ISO week date
    like ``2026-W49-1``, an ordinal date, a time or other digits), or None."""
    if not isinstance(text, str) or not _CALENDAR_DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        return None


def beijing_text(text: str | None) -> str | None:
    """A written time as people read it: Beijing time, ``YYYY-MM-DD HH:MM:SS`` (the text itself
    when it cannot be read, None when there is none)."""
    moment = parse(text)
    if moment is None:
        return text or None
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
