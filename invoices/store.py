"""The invoices store, the SQL of the invoices steps (the accounts' is in
:mod:`invoices.accounts`). Call it inside the caller's unit of work; the compiled writes
are deferred and travel together before the commit (:mod:`ops.shared.persistence.compiled`).
"""

from __future__ import annotations

import uuid

import peewee
from peewee import fn

from invoices.domain import InvoiceStatus, format_number
from invoices.events import Event, InvoiceIssued, payload
from invoices.models import CancelledOrder, Invoice, InvoiceCounter, OutboxEvent, database
from ops.shared.persistence import compiled, outbox
from ops.shared.persistence.database import is_postgres
from ops.shared.values.clock import utcnow

COUNTER = "invoice"  # the counter row of the invoice numbers


def locked(invoice_id: uuid.UUID | None = None, *, order_id: str = "") -> Invoice | None:
    """The invoice (or the order's), locked (on PostgreSQL) until the transaction ends."""
    field, value = (Invoice.order_id, order_id) if order_id else (Invoice.id, invoice_id)
    query = Invoice.select().where(field == value)
    return (query.for_update() if is_postgres(database) else query).first()


def owner(invoice_id: uuid.UUID) -> str | None:
    """The customer of the invoice, or None if there is no such invoice."""
    return Invoice.select(Invoice.customer_id).where(Invoice.id == invoice_id).scalar()


def update(invoice: Invoice, **changes: object) -> None:
    """Change ``invoice``'s fields and write them."""
    for name, value in changes.items():
        setattr(invoice, name, value)
    invoice.save()


def tombstone(order_id: str, reason: str) -> None:
    """Remember that the order was cancelled before its invoice: it is never issued."""
    CancelledOrder.insert(
        order_id=order_id, reason=reason, cancelled_at=utcnow()
    ).on_conflict_ignore().execute()


def known(order_id: str) -> tuple[bool, bool]:
    """Whether the order was cancelled first (a tombstone), and whether it has its invoice."""
    return _ISSUE_CHECKS.first(database, {"order_id": order_id})  # type: ignore[return-value]


def known_orders(order_ids: list[str]) -> tuple[set[str], set[str]]:
    """Of ``order_ids``: those cancelled first (a tombstone), and those already invoiced."""
    if is_postgres(database):
        rows = _KNOWN_ORDERS.execute(database, {"order_ids": order_ids}).fetchall()
        return (
            {order_id for order_id, kind in rows if kind == "cancelled"},
            {order_id for order_id, kind in rows if kind == "invoiced"},
        )
    compiled.flush(database)  # the unit's deferred writes first, as a compiled read would
    tombstones = CancelledOrder.select(CancelledOrder.order_id).where(
        CancelledOrder.order_id.in_(order_ids)
    )
    invoices = Invoice.select(Invoice.order_id).where(Invoice.order_id.in_(order_ids))
    return {row.order_id for row in tombstones}, {row.order_id for row in invoices}


def take_numbers(count: int) -> int:
    """Advance the counter by ``count`` (locking its row until commit); returns the last
    number taken, so this transaction owns ``last - count + 1`` … ``last``."""
    row = _TAKE_NUMBERS.first(database, {"name": COUNTER, "count": count})
    return int(row[0])  # type: ignore[index]


def issue(order_id: str, customer_id: str, total_minor: int, currency: str, sequence: int) -> None:
    """Write the invoice numbered ``sequence`` and its ``InvoiceIssued`` (the caller charges
    the account)."""
    invoice_id = uuid.uuid4()
    number = format_number(sequence)
    values = {
        "id": invoice_id,
        "sequence": sequence,
        "number": number,
        "order_id": order_id,
        "customer_id": customer_id,
        "total_minor": total_minor,
        "currency": currency,
        "status": InvoiceStatus.ISSUED.value,
        "issued_at": utcnow(),
    }
    compiled.defer(database, _INSERT_INVOICE, values)
    emit(InvoiceIssued(order_id, str(invoice_id), number))


def emit(event: Event) -> None:
    """Write ``event`` to the invoices outbox."""
    outbox.record(OutboxEvent, type(event).__name__, event.order_id, payload(event))


# The hot path's statements, compiled once (ops.shared.persistence.compiled).
_ISSUE_CHECKS = compiled.Statement(
    lambda p: peewee.Select(
        columns=[
            fn.EXISTS(CancelledOrder.select().where(CancelledOrder.order_id == p("order_id"))),
            fn.EXISTS(Invoice.select().where(Invoice.order_id == p("order_id"))),
        ]
    )
)
# PostgreSQL only: the batch's orders that have a tombstone or an invoice, in one query.
_KNOWN_ORDERS = compiled.Statement(
    lambda p: peewee.SQL(
        "SELECT order_id, 'cancelled' FROM cancelled_orders"
        " WHERE order_id = ANY(%(order_ids)s::text[])"
        " UNION ALL SELECT order_id, 'invoiced' FROM invoices"
        " WHERE order_id = ANY(%(order_ids)s::text[])"
    )
)
_TAKE_NUMBERS = compiled.Statement(
    lambda p: (
        InvoiceCounter.update(last_value=InvoiceCounter.last_value + p("count"))
        .where(InvoiceCounter.name == p("name"))
        .returning(InvoiceCounter.last_value)
    )
)
_INSERT_INVOICE = compiled.Statement(
    lambda p: Invoice.insert(
        id=p("id", Invoice.id),
        sequence=p("sequence"),
        number=p("number"),
        order_id=p("order_id"),
        customer_id=p("customer_id"),
        total_minor=p("total_minor"),
        currency=p("currency"),
        status=p("status"),
        issued_at=p("issued_at", Invoice.issued_at),
        paid_at=peewee.SQL("NULL"),
        voided_at=peewee.SQL("NULL"),
        void_reason=peewee.SQL("NULL"),
    )
)
