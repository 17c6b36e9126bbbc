"""Issuing invoices: the saga step ``issue_invoice``, one event at a time or a batch at once.

Both forms make the same decisions in the same order: dedupe, lock the customer's
billing account, give up if the order was cancelled (a tombstone) or already has its
invoice, check credit against the account's outstanding total, then take the next
gapless number from the counter row (locked as late as possible) and write the
invoice, the account's new outstanding total and ``InvoiceIssued`` (or
``InvoiceRejected``) in the same transaction.

The batch form pays each cost once per batch: one statement claims every dedupe key,
one locks every account (in ``customer_id`` order), one reads which orders are
cancelled or invoiced, one takes a block of ``k`` numbers from the counter
(``last_value + k``), and the writes travel together before the one commit.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import peewee
from peewee import fn

from invoices.accounts import charge, locked_account, locked_accounts
from invoices.domain import InvoiceStatus, credit_allows, format_number
from invoices.events import Event, InvoiceIssued, InvoiceRejected, payload
from invoices.models import (
    BillingAccount,
    CancelledOrder,
    Invoice,
    InvoiceCounter,
    OutboxEvent,
    ProcessedMessage,
    database,
)
from ops.shared import compiled, dedupe, outbox
from ops.shared.clock import utcnow
from ops.shared.database import is_postgres, unit_of_work
from ops.shared.money import parse_amount

COUNTER = "invoice"
CONSUMER = "issue_invoice"  # the dedupe keys' consumer, the same for both forms


@dataclass(frozen=True)
class IssueRequest:
    """One ``OrderPlaced`` event, as ``issue_invoice`` receives it."""

    order_id: str
    customer_id: str
    total: str
    currency: str
    dedupe_key: str


Around = Callable[[int], AbstractContextManager[object]]


def issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> str:
    """Saga step: issue the order's invoice within the customer's credit, or reject it.

    Returns ``issued``, ``rejected``, ``cancelled`` (the order was cancelled
    first: nothing issued), ``exists`` or ``duplicate``.
    """
    total_minor = parse_amount(total)
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, CONSUMER, dedupe_key):
            return "duplicate"
        account = locked_account(customer_id)
        cancelled, exists = _ISSUE_CHECKS.first(database, {"order_id": order_id})  # type: ignore[misc]
        if cancelled:
            return "cancelled"
        if exists:
            return "exists"
        if not credit_allows(account.outstanding_minor, total_minor, account.credit_limit_minor):
            _emit(InvoiceRejected(order_id, "credit_limit_exceeded"))
            return "rejected"
        sequence = _take_numbers(1)  # locks the counter row: as late as possible
        _write_invoice(order_id, customer_id, total_minor, currency, sequence)
        charge(customer_id, total_minor)
        return "issued"


def issue_invoices(requests: Sequence[IssueRequest], around: Around | None = None) -> list[str]:
    """The batch form of :func:`issue_invoice`: every request in one transaction.

    Returns each request's outcome, in order (a key seen twice is a ``duplicate`` the
    second time). Credit is decided in the order of ``requests``. ``around(i)`` wraps
    the writes of the ``i``-th request (its trace span), so its events carry its own
    trace. A malformed amount raises ``ValueError`` before anything is written.
    """
    totals = [parse_amount(request.total) for request in requests]
    outcomes = ["duplicate"] * len(requests)
    with unit_of_work(database):
        claimed = dedupe.claim_all(ProcessedMessage, CONSUMER, [r.dedupe_key for r in requests])
        fresh: list[int] = []
        for index, request in enumerate(requests):
            if request.dedupe_key in claimed:
                claimed.discard(request.dedupe_key)  # a second copy in the batch is a duplicate
                fresh.append(index)
        if not fresh:
            return outcomes
        accounts = locked_accounts(requests[index].customer_id for index in fresh)
        outstanding = _decide(requests, totals, fresh, accounts, outcomes)
        issued = [index for index in fresh if outcomes[index] == "issued"]
        first = _take_numbers(len(issued)) - len(issued) + 1 if issued else 0
        numbers = {index: first + offset for offset, index in enumerate(issued)}
        wrap = around or (lambda _: contextlib.nullcontext())
        for index in fresh:
            request = requests[index]
            with wrap(index):
                if index in numbers:
                    _write_invoice(
                        request.order_id,
                        request.customer_id,
                        totals[index],
                        request.currency,
                        numbers[index],
                    )
                elif outcomes[index] == "rejected":
                    _emit(InvoiceRejected(request.order_id, "credit_limit_exceeded"))
        for customer, account in accounts.items():
            if outstanding[customer] != account.outstanding_minor:
                charge(customer, outstanding[customer] - account.outstanding_minor)
    return outcomes


def _decide(
    requests: Sequence[IssueRequest],
    totals: list[int],
    fresh: list[int],
    accounts: dict[str, BillingAccount],
    outcomes: list[str],
) -> dict[str, int]:
    """Set the outcome of each fresh request, in order, as :func:`issue_invoice` would one
    after the other; returns each customer's outstanding total after the batch."""
    cancelled, invoiced = _known_orders([requests[index].order_id for index in fresh])
    outstanding = {customer: account.outstanding_minor for customer, account in accounts.items()}
    for index in fresh:
        request, total_minor = requests[index], totals[index]
        limit = accounts[request.customer_id].credit_limit_minor
        if request.order_id in cancelled:
            outcomes[index] = "cancelled"
        elif request.order_id in invoiced:
            outcomes[index] = "exists"
        elif credit_allows(outstanding[request.customer_id], total_minor, limit):
            outstanding[request.customer_id] += total_minor
            invoiced.add(request.order_id)
            outcomes[index] = "issued"
        else:
            outcomes[index] = "rejected"
    return outstanding


def _write_invoice(
    order_id: str, customer_id: str, total_minor: int, currency: str, sequence: int
) -> None:
    """The invoice and its ``InvoiceIssued`` (the caller charges the account)."""
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


def _known_orders(order_ids: list[str]) -> tuple[set[str], set[str]]:
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


def _take_numbers(count: int) -> int:
    """Advance the counter by ``count`` (locking its row until commit); returns the last
    number taken, so this transaction owns ``last - count + 1`` … ``last``."""
    row = _TAKE_NUMBERS.first(database, {"name": COUNTER, "count": count})
    return int(row[0])  # type: ignore[index]


def _emit(event: Event) -> None:
    outbox.record(OutboxEvent, type(event).__name__, event.order_id, payload(event))


# The hot path's statements, compiled once (ops.shared.compiled).
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
