"""Invoices service: the only code that changes the invoices database.

Every function runs in one transaction with its outbox events. Issuing, paying
and voiding for a customer lock that customer's billing account row first
(:func:`invoices.accounts.locked_account`), so the credit rule sees every issued
invoice, the account's outstanding total stays the sum of its issued invoices, and
a void can never slip between another step's check and its insert. Issuing, one
event or a batch, lives in :mod:`invoices.issuing` (re-exported here): numbers come
from a counter row incremented in the issuing transaction, so a rollback returns
them, the series has no gaps, and a voided invoice keeps its number.
"""

from __future__ import annotations

import uuid

from invoices import store
from invoices.accounts import charge, locked_account
from invoices.domain import (
    InvoiceNotFound,
    InvoiceStatus,
    VoidDecision,
    check_payment,
    decide_void,
)
from invoices.events import InvoiceFailed, InvoicePaid, InvoiceVoided
from invoices.issuing import IssueRequest, issue_invoice, issue_invoices
from invoices.models import DeadLetter, Invoice, ProcessedMessage, database
from invoices.queries import invoice_uuid
from invoices.store import COUNTER
from ops.shared.persistence import dead_letters
from ops.shared.persistence.database import unit_of_work
from ops.shared.persistence.steps import step
from ops.shared.telemetry import metrics
from ops.shared.values.clock import utcnow
from ops.shared.values.money import parse_amount

__all__ = [
    "COUNTER",
    "IssueRequest",
    "fail_issuance",
    "issue_invoice",
    "issue_invoices",
    "pay_invoice",
    "record_dead_letter",
    "void_invoice",
]


@step(ProcessedMessage, "void_invoice")
def void_invoice(order_id: str, customer_id: str, reason: str, *, dedupe_key: str) -> str:
    """Compensation: void the order's invoice, or make sure it is never issued.

    Returns ``void``, ``refund`` (it had been paid), ``ignore`` (already void),
    ``tombstone`` (no invoice yet: one will never be issued) or ``duplicate``.
    """
    locked_account(customer_id)
    invoice = store.locked(order_id=order_id)
    if invoice is None:
        store.tombstone(order_id, reason)
        return "tombstone"
    decision = decide_void(InvoiceStatus(invoice.status))
    refund = decision is VoidDecision.REFUND
    if decision is VoidDecision.VOID:  # issued, unpaid: no longer outstanding
        charge(customer_id, -invoice.total_minor)
    if decision is not VoidDecision.IGNORE:
        store.update(
            invoice, status=InvoiceStatus.VOID.value, voided_at=utcnow(), void_reason=reason
        )
        metrics.invoice_voided(refund)
        store.emit(InvoiceVoided(order_id, str(invoice.id), invoice.number, reason, refund))
    return decision.value


def pay_invoice(invoice_id: uuid.UUID | str, amount: str, customer_id: str | None) -> Invoice:
    """Pay an issued invoice with its exact total; 422 for another amount, 409 if void/paid.

    ``customer_id`` is the payer (None for an operator); another customer's
    invoice is reported as not found.
    """
    amount_minor = parse_amount(amount)
    invoice_key = invoice_uuid(invoice_id)
    with unit_of_work(database):
        owner = store.owner(invoice_key)
        if owner is None or (customer_id is not None and owner != customer_id):
            raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
        locked_account(owner)  # first, as issue and void do: the same lock order
        invoice = store.locked(invoice_key)
        check_payment(InvoiceStatus(invoice.status), amount_minor, invoice.total_minor)
        store.update(invoice, status=InvoiceStatus.PAID.value, paid_at=utcnow())
        charge(owner, -invoice.total_minor)
        store.emit(InvoicePaid(invoice.order_id, str(invoice.id), invoice.number))
    return invoice


def fail_issuance(order_id: str, error: str, **dead_letter: object) -> bool:
    """Retries of ``issue_invoice`` are exhausted: record the dead letter and, unless the
    invoice exists after all or the order is already cancelled, announce ``InvoiceFailed``
    so the order is cancelled. Returns True if ``InvoiceFailed`` was emitted."""
    with unit_of_work(database):
        if not dead_letters.record(DeadLetter, order_id=order_id, error=error, **dead_letter):  # type: ignore[arg-type]
            return False
        metrics.dead_lettered("invoices", str(dead_letter.get("actor_name")))
        if any(store.known(order_id)):
            return False
        store.emit(InvoiceFailed(order_id, error.strip().splitlines()[-1][:500] if error else ""))
        return True


def record_dead_letter(**dead_letter: object) -> bool:
    """Keep a durable record of a message the invoices worker gave up on."""
    with unit_of_work(database):
        inserted = dead_letters.record(DeadLetter, **dead_letter)  # type: ignore[arg-type]
    if inserted:
        metrics.dead_lettered("invoices", str(dead_letter.get("actor_name")))
    return inserted
