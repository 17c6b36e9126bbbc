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

from ops.shared import compiled, dead_letters, dedupe, metrics, outbox
from ops.shared.clock import utcnow
from ops.shared.database import is_postgres, unit_of_work
from ops.shared.money import format_minor
from ops.shared.tracing import current_carrier_json, current_trace_id, restored
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
from orders.events import Event, OrderCancelled, OrderPlaced, payload
from orders.models import (
    DeadLetter,
    Order,
    OrderStep,
    OutboxEvent,
    ProcessedMessage,
    database,
)
from orders.queries import order_uuid

# The incoming event behind each saga cancellation, as the timeline shows it.
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
        compiled.defer(database, _INSERT_ORDER, _values(order, _ORDER_FIELDS))
        _emit(
            OrderPlaced(str(order.id), new.customer_id, format_minor(new.total_minor), new.currency)
        )
        _note(order, "OrderPlaced", "pending", "order accepted; invoice requested")
    return order


def cancel_order_by_customer(order_id: uuid.UUID | str, customer_id: str | None) -> Order:
    """A customer cancels a pending or confirmed order; raises 409 if paid or cancelled.

    ``customer_id`` is the caller's (None for an operator): another customer's
    order is reported as not found.
    """
    with unit_of_work(database):
        order = _locked(order_id)
        if customer_id is not None and order.customer_id != customer_id:
            raise OrderNotFound(f"order {order_id} does not exist")
        check_customer_cancel(Status(order.status))
        _cancel(order, CancelReason.CUSTOMER_CANCELLED)
        _note(order, "CancelRequested", "cancelled", "cancelled by the customer; invoice to void")
    return order


def confirm_order(order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was issued. Confirms, ignores, or asks for the void."""
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, "confirm_order", dedupe_key):
            return "duplicate"
        order = _locked(order_id)
        decision = decide_confirm(Status(order.status))
        if decision is Decision.APPLY:
            _attach_invoice(order, invoice_id, invoice_number)
            _transition(order, Status.CONFIRMED)
            _note(
                order, "InvoiceIssued", "confirmed", f"invoice {invoice_number} issued", dedupe_key
            )
        elif decision is Decision.COMPENSATE:
            # The order was cancelled before its invoice arrived: void that invoice.
            _emit(
                OrderCancelled(
                    str(order.id),
                    order.customer_id,
                    order.cancel_reason or CancelReason.CUSTOMER_CANCELLED.value,
                )
            )
            _note(
                order,
                "InvoiceIssued",
                "void_requested",
                f"invoice {invoice_number} arrived after the cancellation",
                dedupe_key,
            )
        else:
            _note(order, "InvoiceIssued", "ignored", f"order already {order.status}", dedupe_key)
        return decision.value


def mark_order_paid(order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was paid. A pending or confirmed order becomes paid."""
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, "mark_order_paid", dedupe_key):
            return "duplicate"
        order = _locked(order_id)
        decision = decide_paid(Status(order.status))
        if decision is Decision.APPLY:
            _attach_invoice(order, invoice_id, invoice_number)
            _transition(order, Status.PAID)
            _note(order, "InvoicePaid", "paid", f"invoice {invoice_number} paid", dedupe_key)
        else:
            _note(order, "InvoicePaid", "ignored", f"order already {order.status}", dedupe_key)
        return decision.value


def cancel_order(order_id: str, reason: str, *, dedupe_key: str) -> str:
    """Saga step: the invoice was rejected or failed. Cancels a still pending order."""
    cancel_reason = CancelReason(reason)
    with unit_of_work(database):
        if not dedupe.claim(ProcessedMessage, "cancel_order", dedupe_key):
            return "duplicate"
        order = _locked(order_id)
        decision = decide_cancel(Status(order.status), cancel_reason)
        event = SAGA_CANCEL_EVENTS.get(cancel_reason, "CancelRequested")
        if decision is Decision.APPLY:
            _cancel(order, cancel_reason)
            _note(order, event, "cancelled", cancel_reason.value, dedupe_key)
        else:
            _note(order, event, "ignored", f"order already {order.status}", dedupe_key)
        return decision.value


def expire_overdue(timeout_seconds: float, limit: int = 100) -> int:
    """Cancel as ``expired`` the pending orders older than the saga timeout; returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=timeout_seconds)
    with unit_of_work(database):
        query = (
            Order.select()
            .where((Order.status == Status.PENDING.value) & (Order.created_at < cutoff))
            .order_by(Order.created_at)
            .limit(limit)
        )
        if is_postgres(database):
            query = query.for_update(skip_locked=True)
        overdue = list(query)
        for order in overdue:
            with restored(order.trace_context):  # the compensation joins the order's trace
                _cancel(order, CancelReason.EXPIRED)
                _note(
                    order,
                    "DeadlinePassed",
                    "cancelled",
                    f"still pending after {timeout_seconds:g} s: expired",
                )
    return len(overdue)


def record_dead_letter(**fields: object) -> bool:
    """Keep a durable record of a message the orders worker gave up on (see
    :func:`ops.shared.dead_letters.record` for the fields)."""
    with unit_of_work(database):
        inserted = dead_letters.record(DeadLetter, **fields)  # type: ignore[arg-type]
    if inserted:
        metrics.dead_lettered("orders", str(fields.get("actor_name")))
    return inserted


def _locked(order_id: uuid.UUID | str) -> Order:
    row = _LOCK_ORDER.first(database, {"id": order_uuid(order_id)})
    if row is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return compiled.row_of(Order, row)  # type: ignore[return-value]


def _transition(order: Order, status: Status) -> None:
    now = utcnow()
    order.status = status.value
    order.updated_at = now
    if order.settled_at is None:  # the saga's automated part ends at its first settlement
        order.settled_at = now
        metrics.saga_settled(status.value, order.created_at, now)
    compiled.defer(database, _SAVE_ORDER, _values(order, [*_MUTABLE_FIELDS, "id"]))


def _values(order: Order, names: list[str]) -> dict[str, object]:
    return {name: order.__data__.get(name) for name in names}


def _cancel(order: Order, reason: CancelReason) -> None:
    order.cancel_reason = reason.value
    _transition(order, Status.CANCELLED)
    metrics.compensated(reason.value)
    _emit(OrderCancelled(str(order.id), order.customer_id, reason.value))


def _attach_invoice(order: Order, invoice_id: str, invoice_number: str) -> None:
    if order.invoice_id is None:
        order.invoice_id = uuid.UUID(invoice_id)
        order.invoice_number = invoice_number


def _note(
    order: Order, event: str, outcome: str, detail: str, dedupe_key: str | None = None
) -> None:
    values = {
        "trace_id": current_trace_id(),
        "order_id": order.id,
        "at": utcnow(),
        "event": event,
        "outcome": outcome,
        "detail": detail,
        "dedupe_key": dedupe_key,
    }
    compiled.defer(database, _INSERT_STEP, values)


def _emit(*events: Event) -> None:
    for event in events:
        outbox.record(OutboxEvent, type(event).__name__, event.order_id, payload(event))


# The hot path's statements, compiled once (ops.shared.compiled).
_ORDER_FIELDS = [field.name for field in Order._meta.sorted_fields]
_MUTABLE_FIELDS = [
    "status",
    "cancel_reason",
    "invoice_id",
    "invoice_number",
    "updated_at",
    "settled_at",
]
_INSERT_ORDER = compiled.Statement(
    lambda p: Order.insert(
        {Order._meta.fields[name]: p(name, Order._meta.fields[name]) for name in _ORDER_FIELDS}
    )
)
_SAVE_ORDER = compiled.Statement(
    lambda p: Order.update(
        {Order._meta.fields[name]: p(name, Order._meta.fields[name]) for name in _MUTABLE_FIELDS}
    ).where(Order.id == p("id", Order.id))
)
_LOCK_ORDER = compiled.Statement(
    lambda p: (
        Order.select().where(Order.id == p("id", Order.id)).for_update()
        if p.postgres
        else Order.select().where(Order.id == p("id", Order.id))
    )
)
_INSERT_STEP = compiled.Statement(
    lambda p: OrderStep.insert(
        trace_id=p("trace_id"),
        order_id=p("order_id", OrderStep.order_id),
        at=p("at", OrderStep.at),
        event=p("event"),
        outcome=p("outcome"),
        detail=p("detail"),
        dedupe_key=p("dedupe_key"),
    )
)
