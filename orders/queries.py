"""Reads of the orders database: one order, keyset pages, counts. No writes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import peewee

from ops.shared.values.clock import utcnow
from ops.shared.values.pagination import Page, keyset_page
from orders.domain import CancelReason, OrderNotFound, Status
from orders.models import Order, OrderStep


def get_order(order_id: uuid.UUID | str) -> Order:
    """The order with this id; raises :class:`OrderNotFound`."""
    order = Order.get_or_none(Order.id == order_uuid(order_id))
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


@dataclass(frozen=True)
class OrderFilter:
    """Which orders a list holds; ``None`` leaves a field out. Times are naive UTC:
    ``created_after`` is inclusive, ``created_before`` exclusive."""

    customer_id: str | None = None
    status: Status | None = None
    cancel_reason: CancelReason | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


def list_orders(which: OrderFilter, page: Page) -> tuple[list[Order], str | None]:
    """Orders newest first, filtered, one keyset page; returns them and the next cursor."""
    query = Order.select()
    if which.customer_id is not None:
        query = query.where(Order.customer_id == which.customer_id)
    if which.status is not None:
        query = query.where(Order.status == which.status.value)
    if which.cancel_reason is not None:
        query = query.where(Order.cancel_reason == which.cancel_reason.value)
    if which.created_after is not None:
        query = query.where(Order.created_at >= which.created_after)
    if which.created_before is not None:
        query = query.where(Order.created_at < which.created_before)
    return keyset_page(query, Order.created_at, Order.id, page)


def count_by_status() -> dict[str, int]:
    """How many orders are in each status."""
    query = Order.select(Order.status, peewee.fn.COUNT(Order.id)).group_by(Order.status)
    counts = {status.value: 0 for status in Status}
    counts.update(dict(query.tuples()))
    return counts


def oldest_pending_age() -> float:
    """Seconds since the oldest still pending order was placed; 0 when none is pending."""
    oldest = (
        Order.select(peewee.fn.MIN(Order.created_at))
        .where(Order.status == Status.PENDING.value)
        .scalar()
    )
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite returns aggregates of datetimes as text
        oldest = dt.datetime.fromisoformat(oldest)
    return max(0.0, (utcnow() - oldest).total_seconds())


def order_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OrderNotFound(f"order {value} does not exist") from None


def lines_of(order: Order) -> Iterable[dict[str, object]]:
    """The order's lines as stored: ``{sku, quantity, unit_price}`` with decimal strings."""
    return json.loads(order.lines)


def timeline(order_id: uuid.UUID | str) -> list[OrderStep]:
    """The order's saga steps, oldest first."""
    return list(
        OrderStep.select()
        .where(OrderStep.order_id == order_uuid(order_id))
        .order_by(OrderStep.at, OrderStep.seq)
    )
