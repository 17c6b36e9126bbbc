"""Orders service: the only code that changes the orders database.

HTTP resources and actors call these functions; each runs in one transaction
(or joins the caller's) and writes its events to the outbox
in that same transaction. Saga steps take the message's dedupe key and
record it with the effect, so a repeated message changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ops.shared.persistence import dead_letters
from ops.shared.persistence.database import unit_of_work
from ops.shared.persistence.steps import Around, batch, step
from ops.shared.telemetry import metrics
from ops.shared.telemetry.tracing import current_carrier_json, linked_trace
from ops.shared.values.clock import utcnow
from ops.shared.values.money import format_minor
from orders import store
from orders.domain import (
    CancelReason,
    Decision,
    NewOrder,
    OrderNotFound,
    Status,
    check_customer_cancel,
    decide_cancel,
    decide_confirm,
    decide_paid,
)
from orders.events import OrderCancelled, OrderPlaced
from orders.models import DeadLetter, Order, ProcessedMessage, database
from orders.queries import order_uuid

CONFIRMING = "confirm_order"  # the dedupe keys' consumer, the same for both forms
# The event behind each cancellation ``cancel_order`` takes, as the timeline shows it.
SAGA_CANCEL_EVENTS = {
    CancelReason.CREDIT_REJECTED: "InvoiceRejected",
    CancelReason.INVOICE_FAILED: "InvoiceFailed",
}


def place_order(new: NewOrder) -> Order:
    """Store a pending order and its ``OrderPlaced`` event in one transaction."""
    now = utcnow()
    lines = [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": format_minor(line.unit_price_minor),
        }
        for line in new.lines
    ]
    order = Order(
        id=uuid.uuid4(),
        customer_id=new.customer_id,
        lines=json.dumps(lines, separators=(",", ":")),
        total_minor=new.total_minor,
        currency=new.currency,
        status=Status.PENDING.value,
        created_at=now,
        updated_at=now,
        trace_context=current_carrier_json(),
    )
    with unit_of_work(database):
        store.insert(order)
        store.emit(
            OrderPlaced(str(order.id), new.customer_id, format_minor(new.total_minor), new.currency)
        )
        store.note(order, "OrderPlaced", "pending", "order accepted; invoice requested")
    return order


def cancel_order_by_customer(order_id: uuid.UUID | str, customer_id: str | None) -> Order:
    """A customer cancels a pending or confirmed order; raises 409 if paid or cancelled.

    ``customer_id`` is the caller's (None for an operator): another customer's
    order is reported as not found.
    """
    with unit_of_work(database):
        order = store.locked(order_id)
        if customer_id is not None and order.customer_id != customer_id:
            raise OrderNotFound(f"order {order_id} does not exist")
        check_customer_cancel(Status(order.status))
        store.cancel(order, CancelReason.CUSTOMER_CANCELLED)
        store.note(
            order, "CancelRequested", "cancelled", "cancelled by the customer; invoice to void"
        )
    return order


@dataclass(frozen=True)
class ConfirmRequest:
    """One ``InvoiceIssued`` event, as ``confirm_order`` receives it."""

    order_id: str
    invoice_id: str
    invoice_number: str
    dedupe_key: str


@step(ProcessedMessage, CONFIRMING)
def confirm_order(order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was issued. Confirms, ignores, or asks for the void."""
    request = ConfirmRequest(order_id, invoice_id, invoice_number, dedupe_key)
    return _confirm(store.locked(order_id), request)


def confirm_orders(requests: Sequence[ConfirmRequest], around: Around | None = None) -> list[str]:
    """The batch form of :func:`confirm_order`: every request in one transaction, with
    one statement for the dedupe keys and one for the order locks (in id order).

    Returns each request's outcome, in order (a key seen twice is a ``duplicate`` the
    second time). ``around(i)`` wraps the ``i``-th request's work (its trace span).
    Raises ``OrderNotFound`` if an order does not exist, before anything is written.
    """
    with batch(ProcessedMessage, CONFIRMING, [r.dedupe_key for r in requests], around) as claimed:
        orders = store.locked_all(requests[index].order_id for index in claimed.fresh)
        for index in claimed.fresh:
            with claimed.around(index):
                order = orders[str(order_uuid(requests[index].order_id))]
                claimed.outcomes[index] = _confirm(order, requests[index])
    return claimed.outcomes


def _confirm(order: Order, request: ConfirmRequest) -> str:
    """Apply ``InvoiceIssued`` to the locked ``order``: confirm, ignore, or ask for the void."""
    invoice_number, dedupe_key = request.invoice_number, request.dedupe_key
    decision = decide_confirm(Status(order.status))
    if decision is Decision.APPLY:
        store.attach_invoice(order, request.invoice_id, invoice_number)
        store.transition(order, Status.CONFIRMED)
        store.note(
            order, "InvoiceIssued", "confirmed", f"invoice {invoice_number} issued", dedupe_key
        )
    elif decision is Decision.COMPENSATE:
        # The order was cancelled before its invoice arrived: void that invoice.
        reason = order.cancel_reason or CancelReason.CUSTOMER_CANCELLED.value
        store.emit(OrderCancelled(str(order.id), order.customer_id, reason))
        detail = f"invoice {invoice_number} arrived after the cancellation"
        store.note(order, "InvoiceIssued", "void_requested", detail, dedupe_key)
    else:
        store.note(order, "InvoiceIssued", "ignored", f"order already {order.status}", dedupe_key)
    return decision.value


@step(ProcessedMessage, "mark_order_paid")
def mark_order_paid(order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was paid. A pending or confirmed order becomes paid."""
    order = store.locked(order_id)
    decision = decide_paid(Status(order.status))
    if decision is Decision.APPLY:
        store.attach_invoice(order, invoice_id, invoice_number)
        store.transition(order, Status.PAID)
        store.note(order, "InvoicePaid", "paid", f"invoice {invoice_number} paid", dedupe_key)
    else:
        store.note(order, "InvoicePaid", "ignored", f"order already {order.status}", dedupe_key)
    return decision.value


@step(ProcessedMessage, "cancel_order")
def cancel_order(order_id: str, reason: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was rejected or failed. Cancels a still pending order; a
    reason the saga never sends raises (``ValueError``, ``KeyError``) and changes nothing."""
    cancel_reason = CancelReason(reason)
    event = SAGA_CANCEL_EVENTS[cancel_reason]
    order = store.locked(order_id)
    decision = decide_cancel(Status(order.status))
    if decision is Decision.APPLY:
        store.cancel(order, cancel_reason)
        store.note(order, event, "cancelled", cancel_reason.value, dedupe_key)
    else:
        store.note(order, event, "ignored", f"order already {order.status}", dedupe_key)
    return decision.value


def expire_overdue(timeout_seconds: float, limit: int = 100) -> int:
    """Cancel as ``expired`` the pending orders older than the saga timeout; returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=timeout_seconds)
    with unit_of_work(database):
        overdue = store.overdue(cutoff, limit)
        for order in overdue:
            # The compensation is a trace of its own, linked to the order's: that one
            # ended minutes ago, and a tail-sampling collector would drop its late spans.
            with linked_trace(
                "expire order", order.trace_context, {"orderflow.order_id": str(order.id)}
            ):
                store.cancel(order, CancelReason.EXPIRED)
                store.note(
                    order,
                    "DeadlinePassed",
                    "cancelled",
                    f"still pending after {timeout_seconds:g} s: expired",
                )
    return len(overdue)


def record_dead_letter(**fields: object) -> bool:
    """Keep a durable record of a message the orders worker gave up on (see
    :func:`ops.shared.persistence.dead_letters.record` for the fields)."""
    with unit_of_work(database):
        inserted = dead_letters.record(DeadLetter, **fields)  # type: ignore[arg-type]
    if inserted:
        metrics.dead_lettered("orders", str(fields.get("actor_name")))
    return inserted
