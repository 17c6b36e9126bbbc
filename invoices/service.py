"""Invoices service: the only code that changes the invoices database.

Every function runs in one transaction with its outbox events. Issuing and
voiding for a customer lock that customer's billing account row first
(:func:`invoices.accounts.locked_account`), so
the credit rule sees every issued invoice and a void can never slip between
another step's check and its insert. Invoice numbers come from a counter row
incremented in the issuing transaction: a rollback returns the number, so the
series has no gaps, and a voided invoice keeps its number.
"""

from __future__ import annotations

import uuid

import peewee
from peewee import fn

from invoices.accounts import locked_account
from invoices.domain import (
    InvoiceNotFound,
    InvoiceStatus,
    VoidDecision,
    check_payment,
    credit_allows,
    decide_void,
    format_number,
)
from invoices.events import (
    Event,
    InvoiceFailed,
    InvoiceIssued,
    InvoicePaid,
    InvoiceRejected,
    InvoiceVoided,
    payload,
)
from invoices.models import (
    CancelledOrder,
    DeadLetter,
    Invoice,
    InvoiceCounter,
    OutboxEvent,
    ProcessedMessage,
    database,
)
from invoices.queries import invoice_uuid
from ops.shared import compiled, dead_letters, dedupe, metrics, outbox
from ops.shared.clock import utcnow
from ops.shared.database import is_postgres, unit_of_work
from ops.shared.money import parse_amount

COUNTER = "invoice"


def issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> str:
    """Saga step: issue the order's invoice within the customer's credit, or reject it.

    Returns ``issued``, ``rejected``, ``cancelled`` (the order was cancelled
    first: nothing issued), ``exists`` or ``duplicate``.
    """
    total_minor = parse_amount(total)
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, "issue_invoice", dedupe_key):
            return "duplicate"
        account = locked_account(customer_id)
        cancelled, exists, outstanding = _ISSUE_CHECKS.first(
            database,
            {
                "order_id": order_id,
                "customer_id": customer_id,
                "issued": InvoiceStatus.ISSUED.value,
            },
        )  # type: ignore[misc]
        if cancelled:
            return "cancelled"
        if exists:
            return "exists"
        if not credit_allows(int(outstanding), total_minor, account.credit_limit_minor):
            _emit(InvoiceRejected(order_id, "credit_limit_exceeded"))
            return "rejected"
        sequence = _next_sequence()  # locks the counter row: as late as possible
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
        _emit(InvoiceIssued(order_id, str(invoice_id), number))
        return "issued"


def void_invoice(order_id: str, customer_id: str, reason: str, *, dedupe_key: str) -> str:
    """Compensation: void the order's invoice, or make sure it is never issued.

    Returns ``void``, ``refund`` (it had been paid), ``ignore`` (already void),
    ``tombstone`` (no invoice yet: one will never be issued) or ``duplicate``.
    """
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, "void_invoice", dedupe_key):
            return "duplicate"
        locked_account(customer_id)
        invoice = _locked(Invoice.order_id == order_id)
        if invoice is None:
            CancelledOrder.insert(
                order_id=order_id, reason=reason, cancelled_at=utcnow()
            ).on_conflict_ignore().execute()
            return "tombstone"
        decision = decide_void(InvoiceStatus(invoice.status))
        if decision is not VoidDecision.IGNORE:
            invoice.status = InvoiceStatus.VOID.value
            invoice.voided_at = utcnow()
            invoice.void_reason = reason
            invoice.save()
            metrics.invoice_voided(decision is VoidDecision.REFUND)
            _emit(
                InvoiceVoided(
                    order_id,
                    str(invoice.id),
                    invoice.number,
                    reason,
                    decision is VoidDecision.REFUND,
                )
            )
        return decision.value


def pay_invoice(invoice_id: uuid.UUID | str, amount: str, customer_id: str | None) -> Invoice:
    """Pay an issued invoice with its exact total; 422 for another amount, 409 if void/paid.

    ``customer_id`` is the payer (None for an operator); another customer's
    invoice is reported as not found.
    """
    amount_minor = parse_amount(amount)
    with unit_of_work(database):
        invoice = _locked(Invoice.id == invoice_uuid(invoice_id))
        if invoice is None or (customer_id is not None and invoice.customer_id != customer_id):
            raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
        check_payment(InvoiceStatus(invoice.status), amount_minor, invoice.total_minor)
        invoice.status = InvoiceStatus.PAID.value
        invoice.paid_at = utcnow()
        invoice.save()
        _emit(InvoicePaid(invoice.order_id, str(invoice.id), invoice.number))
    return invoice


def fail_issuance(order_id: str, error: str, **dead_letter: object) -> bool:
    """Retries of ``issue_invoice`` are exhausted: record the dead letter and, unless the
    invoice exists after all or the order is already cancelled, announce ``InvoiceFailed``
    so the order is cancelled. Returns True if ``InvoiceFailed`` was emitted."""
    with unit_of_work(database):
        if not dead_letters.record(DeadLetter, order_id=order_id, error=error, **dead_letter):  # type: ignore[arg-type]
            return False
        metrics.dead_lettered("invoices", str(dead_letter.get("actor_name")))
        if Invoice.get_or_none(Invoice.order_id == order_id) is not None:
            return False
        if CancelledOrder.get_or_none(CancelledOrder.order_id == order_id) is not None:
            return False
        _emit(InvoiceFailed(order_id, error.strip().splitlines()[-1][:500] if error else ""))
        return True


def record_dead_letter(**dead_letter: object) -> bool:
    """Keep a durable record of a message the invoices worker gave up on."""
    with unit_of_work(database):
        inserted = dead_letters.record(DeadLetter, **dead_letter)  # type: ignore[arg-type]
    if inserted:
        metrics.dead_lettered("invoices", str(dead_letter.get("actor_name")))
    return inserted


def _locked(condition: peewee.Expression, model: type[peewee.Model] = Invoice) -> peewee.Model:
    query = model.select().where(condition)
    if is_postgres(database):
        query = query.for_update()
    return query.first()


def _next_sequence() -> int:
    return int(_NEXT_SEQUENCE.first(database, {"name": COUNTER})[0])  # type: ignore[index]


def _emit(event: Event) -> None:
    outbox.record(OutboxEvent, type(event).__name__, event.order_id, payload(event))


# The hot path's statements, compiled once (ops.shared.compiled).
_ISSUE_CHECKS = compiled.Statement(
    lambda p: peewee.Select(
        columns=[
            fn.EXISTS(CancelledOrder.select().where(CancelledOrder.order_id == p("order_id"))),
            fn.EXISTS(Invoice.select().where(Invoice.order_id == p("order_id"))),
            Invoice.select(fn.COALESCE(fn.SUM(Invoice.total_minor), peewee.SQL("0"))).where(
                (Invoice.customer_id == p("customer_id")) & (Invoice.status == p("issued"))
            ),
        ]
    )
)
_NEXT_SEQUENCE = compiled.Statement(
    lambda p: (
        InvoiceCounter.update(last_value=InvoiceCounter.last_value + peewee.SQL("1"))
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
