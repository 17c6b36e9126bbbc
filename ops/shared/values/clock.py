"""Time: UTC everywhere, ISO 8601 on the wire."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime (how the databases store it)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_utc(text: str) -> dt.datetime | None:
    """An ISO 8601 time with a ``Z`` or an offset, as naive UTC; ``None`` if it is not one
    (a time without a zone is refused: it would be read in an unknown one)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or not dt.MINYEAR < moment.year < dt.MAXYEAR:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def isoformat(moment: dt.datetime | None) -> str | None:
    """Render a stored UTC datetime as ISO 8601 with a ``Z``; ``None`` stays ``None``."""
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite may hand back text for computed columns
        moment = dt.datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
