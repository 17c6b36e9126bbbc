"""Time: UTC everywhere, ISO 8601 on the wire."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime (how the databases store it)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def isoformat(moment: dt.datetime | None) -> str | None:
    """Render a stored UTC datetime as ISO 8601 with a ``Z``; ``None`` stays ``None``."""
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite may hand back text for computed columns
        moment = dt.datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
