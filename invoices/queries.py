"""Reads of the invoices database: one invoice, keyset pages, outstanding totals, counts."""

from __future__ import annotations

import uuid

import peewee

from invoices.domain import InvoiceNotFound, InvoiceStatus
from invoices.models import Invoice
from ops.shared.values.pagination import Page, keyset_page


def get_invoice(invoice_id: uuid.UUID | str) -> Invoice:
    """The invoice with this id; raises :class:`InvoiceNotFound`."""
    invoice = Invoice.get_or_none(Invoice.id == invoice_uuid(invoice_id))
    if invoice is None:
        raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
    return invoice


def list_invoices(
    order_ids: list[str] | None,
    customer_id: str | None,
    status: InvoiceStatus | None,
    page: Page,
) -> tuple[list[Invoice], str | None]:
    """Invoices newest first, filtered, one keyset page; returns them and the next cursor.

    ``order_ids`` looks up the invoices of many orders in one query (the gateway's
    batch look-up).
    """
    query = Invoice.select()
    if order_ids is not None:
        query = query.where(Invoice.order_id.in_(order_ids))
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    if status is not None:
        query = query.where(Invoice.status == status.value)
    return keyset_page(query, Invoice.issued_at, Invoice.id, page)


def count_by_status() -> dict[str, int]:
    """How many invoices are in each status."""
    query = Invoice.select(Invoice.status, peewee.fn.COUNT(Invoice.id)).group_by(Invoice.status)
    counts = {status.value: 0 for status in InvoiceStatus}
    counts.update(dict(query.tuples()))
    return counts


def outstanding_minor(customer_id: str) -> int:
    total = (
        Invoice.select(peewee.fn.COALESCE(peewee.fn.SUM(Invoice.total_minor), 0))
        .where(
            (Invoice.customer_id == customer_id) & (Invoice.status == InvoiceStatus.ISSUED.value)
        )
        .scalar()
    )
    return int(total)


def invoice_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvoiceNotFound(f"invoice {value} does not exist") from None
