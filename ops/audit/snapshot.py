"""What the audit reads: compact, set-based snapshots of both databases."""

from __future__ import annotations

import dataclasses
import datetime as dt

import peewee

from invoices.models import Invoice, InvoiceCounter
from ops.audit.constants import INVOICE_COUNTER
from ops.shared.values.clock import utcnow
from orders.models import Order


def as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, str):  # SQLite may hand back text
        return dt.datetime.fromisoformat(value)
    return value  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class InvoiceSnapshot:
    counter: int
    # (order_id, status, total_minor, currency, sequence, number)
    rows: list[tuple[str, str, int, str, int, str]]
    read_at: dt.datetime


def read_invoices() -> InvoiceSnapshot:
    with Invoice._meta.database.atomic():
        read_at = utcnow()
        counter = (
            InvoiceCounter.select(peewee.fn.MAX(InvoiceCounter.last_value))
            .where(InvoiceCounter.name == INVOICE_COUNTER)
            .scalar()
        )
        rows = list(
            Invoice.select(
                Invoice.order_id,
                Invoice.status,
                Invoice.total_minor,
                Invoice.currency,
                Invoice.sequence,
                Invoice.number,
            )
            .tuples()
            .iterator()
        )
    return InvoiceSnapshot(int(counter or 0), rows, read_at)


def read_orders() -> dict[str, tuple[str, int, str, dt.datetime | None]]:
    """order id → (status, total_minor, currency, settled_at)."""
    query = Order.select(
        Order.id, Order.status, Order.total_minor, Order.currency, Order.settled_at
    ).tuples()
    return {
        str(order_id): (status, total, currency, as_datetime(settled_at))
        for order_id, status, total, currency, settled_at in query.iterator()
    }
