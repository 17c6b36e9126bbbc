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

from collections.abc import Sequence
from dataclasses import dataclass

from invoices import store
from invoices.accounts import charge, locked_account, locked_accounts
from invoices.domain import credit_allows
from invoices.events import InvoiceRejected
from invoices.models import BillingAccount, ProcessedMessage
from ops.shared.persistence.steps import Around, batch, step
from ops.shared.values.money import parse_amount

CONSUMER = "issue_invoice"  # the dedupe keys' consumer, the same for both forms


@dataclass(frozen=True)
class IssueRequest:
    """One ``OrderPlaced`` event, as ``issue_invoice`` receives it."""

    order_id: str
    customer_id: str
    total: str
    currency: str
    dedupe_key: str


@step(ProcessedMessage, CONSUMER)
def issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> str:
    """Saga step: issue the order's invoice within the customer's credit, or reject it.

    Returns ``issued``, ``rejected``, ``cancelled`` (the order was cancelled
    first: nothing issued), ``exists`` or ``duplicate``.
    """
    total_minor = parse_amount(total)
    account = locked_account(customer_id)
    cancelled, exists = store.known(order_id)
    if cancelled:
        return "cancelled"
    if exists:
        return "exists"
    if not credit_allows(account.outstanding_minor, total_minor, account.credit_limit_minor):
        store.emit(InvoiceRejected(order_id, "credit_limit_exceeded"))
        return "rejected"
    sequence = store.take_numbers(1)  # locks the counter row: as late as possible
    store.issue(order_id, customer_id, total_minor, currency, sequence)
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
    with batch(ProcessedMessage, CONSUMER, [r.dedupe_key for r in requests], around) as claimed:
        if not claimed.fresh:
            return claimed.outcomes
        accounts = locked_accounts(requests[index].customer_id for index in claimed.fresh)
        outstanding = _decide(requests, totals, claimed.fresh, accounts, claimed.outcomes)
        issued = [index for index in claimed.fresh if claimed.outcomes[index] == "issued"]
        first = store.take_numbers(len(issued)) - len(issued) + 1 if issued else 0
        numbers = {index: first + offset for offset, index in enumerate(issued)}
        for index in claimed.fresh:
            request = requests[index]
            with claimed.around(index):
                if index in numbers:
                    store.issue(
                        request.order_id,
                        request.customer_id,
                        totals[index],
                        request.currency,
                        numbers[index],
                    )
                elif claimed.outcomes[index] == "rejected":
                    store.emit(InvoiceRejected(request.order_id, "credit_limit_exceeded"))
        for customer, account in accounts.items():
            if outstanding[customer] != account.outstanding_minor:
                charge(customer, outstanding[customer] - account.outstanding_minor)
    return claimed.outcomes


def _decide(
    requests: Sequence[IssueRequest],
    totals: list[int],
    fresh: list[int],
    accounts: dict[str, BillingAccount],
    outcomes: list[str],
) -> dict[str, int]:
    """Set the outcome of each fresh request, in order, as :func:`issue_invoice` would one
    after the other; returns each customer's outstanding total after the batch."""
    cancelled, invoiced = store.known_orders([requests[index].order_id for index in fresh])
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
