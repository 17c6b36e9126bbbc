"""The orders store: the SQL of the orders steps. Lock an order (or a batch of them, or
the overdue ones), insert one, move it to a status, cancel it, note a timeline step, emit
an event. Call them inside the caller's unit of work; the inserts and updates are
deferred and travel together before the commit (:mod:`ops.shared.persistence.compiled`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import peewee

from ops.shared.persistence import compiled, outbox
from ops.shared.persistence.database import is_postgres
from ops.shared.telemetry import metrics
from ops.shared.telemetry.tracing import current_trace_id
from ops.shared.values.clock import utcnow
from orders.domain import CancelReason, OrderNotFound, Status
from orders.events import Event, OrderCancelled, payload
from orders.models import Order, OrderStep, OutboxEvent, database
from orders.queries import order_uuid


def locked(order_id: uuid.UUID | str) -> Order:
    """The order, locked until the transaction ends; raises ``OrderNotFound``."""
    row = _LOCK_ORDER.first(database, {"id": order_uuid(order_id)})
    if row is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return compiled.row_of(Order, row)  # type: ignore[return-value]


def locked_all(order_ids: Iterable[str]) -> dict[str, Order]:
    """The orders of ``order_ids`` by id (as text), locked in id order (so two batches
    never deadlock) until the transaction ends; raises ``OrderNotFound`` if one is
    missing. On PostgreSQL one statement for all of them."""
    keys = sorted({order_uuid(order_id) for order_id in order_ids})
    if not is_postgres(database):
        return {str(key): locked(key) for key in keys}
    rows = _LOCK_ORDERS.execute(database, {"ids": [str(key) for key in keys]}).fetchall()
    orders = {str(order.id): order for order in (compiled.row_of(Order, row) for row in rows)}
    missing = [str(key) for key in keys if str(key) not in orders]
    if missing:
        raise OrderNotFound(f"order {missing[0]} does not exist")
    return orders  # type: ignore[return-value]


def overdue(cutoff: dt.datetime, limit: int) -> list[Order]:
    """Up to ``limit`` pending orders placed before ``cutoff``, oldest first, locked (on
    PostgreSQL, skipping those another transaction holds)."""
    query = (
        Order.select()
        .where((Order.status == Status.PENDING.value) & (Order.created_at < cutoff))
        .order_by(Order.created_at)
        .limit(limit)
    )
    return list(query.for_update(skip_locked=True) if is_postgres(database) else query)


def insert(order: Order) -> None:
    """Write a new order."""
    compiled.defer(database, _INSERT_ORDER, values_of(order, _ORDER_FIELDS))


def transition(order: Order, status: Status) -> None:
    """Move ``order`` to ``status``; its first settlement ends the saga's automated part."""
    now = utcnow()
    order.status = status.value
    order.updated_at = now
    if order.settled_at is None:  # the saga's automated part ends at its first settlement
        order.settled_at = now
        metrics.saga_settled(status.value, order.created_at, now)
    compiled.defer(database, _SAVE_ORDER, values_of(order, [*_MUTABLE_FIELDS, "id"]))


def values_of(order: Order, names: list[str]) -> dict[str, object]:
    return {name: order.__data__.get(name) for name in names}


def cancel(order: Order, reason: CancelReason) -> None:
    """Cancel ``order`` for ``reason`` and emit ``OrderCancelled`` (its invoice is voided)."""
    order.cancel_reason = reason.value
    transition(order, Status.CANCELLED)
    metrics.compensated(reason.value)
    emit(OrderCancelled(str(order.id), order.customer_id, reason.value))


def attach_invoice(order: Order, invoice_id: str, invoice_number: str) -> None:
    """Remember the order's invoice (the first one, if several ever arrive)."""
    if order.invoice_id is None:
        order.invoice_id = uuid.UUID(invoice_id)
        order.invoice_number = invoice_number


def note(
    order: Order, event: str, outcome: str, detail: str, dedupe_key: str | None = None
) -> None:
    """Record a timeline step of ``order`` (with the current trace id)."""
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


def emit(*events: Event) -> None:
    """Write ``events`` to the orders outbox."""
    for event in events:
        outbox.record(OutboxEvent, type(event).__name__, event.order_id, payload(event))


# The hot path's statements, compiled once (ops.shared.persistence.compiled).
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
# PostgreSQL only: a batch's orders, locked in id order.
_LOCK_ORDERS = compiled.Statement(
    lambda p: (
        Order.select()
        .where(Order.id == peewee.fn.ANY(peewee.SQL("%(ids)s::text[]::uuid[]")))
        .order_by(Order.id)
        .for_update()
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

# The saga's outcomes (an order's first settlement) and cancel reasons start at 0.
SETTLED = [status for status in Status if status is not Status.PENDING]
metrics.declare_known("orders", outcomes=SETTLED, cancel_reasons=CancelReason)
