"""Keyset pagination: an opaque cursor naming the last row of the previous page.

Pages are ordered newest first by ``(created_at, id)``; the cursor carries that
pair, so a page costs one index range scan however deep the client goes, and
rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import peewee

from ops.shared.values.errors import FieldCollector

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    """What a client asked for: how many rows and after which row."""

    limit: int
    after: tuple[dt.datetime, str] | None


def encode_cursor(created_at: dt.datetime, row_id: str) -> str:
    """The cursor that resumes after the row ``(created_at, row_id)``."""
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_page(limit: str | None, cursor: str | None, errors: FieldCollector) -> Page:
    """Validate ``limit`` (1..200, default 50) and ``cursor`` (a timestamp and a row's
    UUID, as :func:`encode_cursor` made it); problems go to ``errors``."""
    size = DEFAULT_LIMIT
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            errors.add("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        else:
            size = int(limit)
    after = None
    if cursor is not None:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            stamp, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
            # Row ids are UUIDs in both services; anything else was not issued by us.
            after = (dt.datetime.fromisoformat(stamp), str(uuid.UUID(row_id)))
        except (ValueError, TypeError, AttributeError, binascii.Error):
            errors.add("cursor", "is not a cursor this service issued")
    return Page(size, after)


def keyset_page(
    query: peewee.ModelSelect, stamp: peewee.Field, key: peewee.Field, page: Page
) -> tuple[list[Any], str | None]:
    """One page of ``query`` newest first by ``(stamp, key)``, and the cursor of the next."""
    if page.after is not None:
        after_stamp, after_key = page.after
        query = query.where((stamp < after_stamp) | ((stamp == after_stamp) & (key < after_key)))
    rows = list(query.order_by(stamp.desc(), key.desc()).limit(page.limit + 1))
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, stamp.name), str(getattr(last, key.name)))
