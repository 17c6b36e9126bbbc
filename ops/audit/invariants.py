"""The seven invariants I1-I7, each a function from snapshots to a result."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from invoices.domain import format_number
from ops.audit.constants import (
    DEAD_MESSAGE_TTL,
    INVOICED,
    LIVE_INVOICE,
    MAX_OFFENDERS,
    SETTLED,
)
from ops.audit.report import InvariantResult, result_of
from ops.audit.snapshot import InvoiceSnapshot
from ops.services import descriptions
from ops.shared.persistence.dead_letters import unreplayed
from orders.domain import Status
from orders.models import Order


def overdue_orders(now: dt.datetime, deadline_seconds: float) -> InvariantResult:
    cutoff = now - dt.timedelta(seconds=deadline_seconds)
    query = (
        Order.select(Order.id)
        .where(Order.status.not_in(SETTLED) & (Order.created_at < cutoff))
        .order_by(Order.created_at, Order.id)
    )
    count = query.count()
    offenders = [str(order_id) for (order_id,) in query.limit(MAX_OFFENDERS).tuples()]
    return InvariantResult(
        "I1",
        "every order settled or younger than the deadline",
        count == 0,
        count,
        offenders,
        f"deadline {deadline_seconds:g}s",
    )


def one_invoice_per_order(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]], invoices: InvoiceSnapshot
) -> InvariantResult:
    per_order = Counter(row[0] for row in invoices.rows)
    offenders = []
    for order_id, (status, _total, _currency, settled_at) in orders.items():
        invoiced = per_order.get(order_id, 0)
        # An order confirmed after the invoice snapshot may have a newer invoice than it.
        missing = (
            status in INVOICED
            and invoiced == 0
            and (settled_at is None or settled_at < invoices.read_at)
        )
        if missing or invoiced > 1:
            offenders.append(order_id)
    offenders.extend(sorted(order_id for order_id in per_order if order_id not in orders))
    return result_of(
        "I2",
        "exactly one invoice per confirmed or paid order, none orphaned",
        offenders,
        "order ids (missing, duplicated or orphan invoices)",
    )


def cancelled_without_live_invoice(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]],
    invoices: InvoiceSnapshot,
    grace_cutoff: dt.datetime,
) -> InvariantResult:
    offenders = []
    for order_id, status, *_ in invoices.rows:
        order = orders.get(order_id)
        if order is None or order[0] != Status.CANCELLED.value or status not in LIVE_INVOICE:
            continue
        cancelled_at = order[3]
        # The void runs after the cancellation; give it the outbox threshold to arrive.
        if cancelled_at is None or cancelled_at < grace_cutoff:
            offenders.append(order_id)
    return result_of(
        "I3", "no cancelled order has an issued or paid invoice", sorted(offenders), "order ids"
    )


def amounts_agree(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]], invoices: InvoiceSnapshot
) -> InvariantResult:
    offenders = []
    for order_id, _status, total, currency, _sequence, _number in invoices.rows:
        order = orders.get(order_id)
        if order is not None and (order[1], order[2]) != (total, currency):
            offenders.append(order_id)
    return result_of(
        "I4", "invoice total and currency equal the order's", sorted(offenders), "order ids"
    )


def outbox_published(now: dt.datetime, threshold_seconds: float) -> InvariantResult:
    cutoff = now - dt.timedelta(seconds=threshold_seconds)
    count = 0
    offenders: list[str] = []
    for service in descriptions():
        model = service.outbox
        query = model.select(model.event_id).where(
            model.published_at.is_null() & (model.created_at < cutoff)
        )
        count += query.count()
        listed = query.order_by(model.seq).limit(MAX_OFFENDERS).tuples()
        offenders.extend(f"{service.name}:{event_id}" for (event_id,) in listed)
    return InvariantResult(
        "I5",
        "no outbox event unpublished for longer than the threshold",
        count == 0,
        count,
        offenders[:MAX_OFFENDERS],
        f"threshold {threshold_seconds:g}s",
    )


def dead_letters_recorded(
    now: dt.datetime, broker_depth: Mapping[str, int] | None
) -> InvariantResult:
    title = "every dead-lettered message has a database record"
    queues = {f"{service.name}.XQ": service.dead_letters for service in descriptions()}
    waiting = {queue: unreplayed(model) for queue, model in queues.items()}
    if broker_depth is None:
        detail = "broker not checked; unreplayed " + ", ".join(
            f"{queue}={count}" for queue, count in waiting.items()
        )
        return InvariantResult("I6", title, True, 0, [], detail)
    offenders = []
    details = []
    for queue, model in queues.items():
        depth = broker_depth.get(queue)
        if depth is None:
            details.append(f"{queue} not checked")
            continue
        # A replayed record still has its message in the .XQ queue until the TTL drops
        # it, so every record young enough to be there counts, replayed or not.
        recorded = model.select().where(model.failed_at >= now - DEAD_MESSAGE_TTL).count()
        details.append(f"{queue}: {depth} queued, {recorded} recorded, {waiting[queue]} waiting")
        if depth > recorded:
            offenders.append(f"{queue} ({depth} queued > {recorded} recorded)")
    if offenders:
        details.append("`orderflow dlq recover` records the messages without a record")
    return result_of("I6", title, offenders, "; ".join(details))


def invoice_numbers_gapless(invoices: InvoiceSnapshot) -> InvariantResult:
    sequences = Counter(row[4] for row in invoices.rows)
    numbers = Counter(row[5] for row in invoices.rows)
    highest = max([invoices.counter, *sequences])
    offenders: list[str] = []
    offenders.extend(
        f"missing {format_number(n)}" for n in range(1, highest + 1) if n not in sequences
    )
    offenders.extend(
        f"sequence {n} used {times} times" for n, times in sorted(sequences.items()) if times > 1
    )
    offenders.extend(f"number {n} used {times} times" for n, times in numbers.items() if times > 1)
    offenders.extend(
        f"{number} has sequence {sequence}"
        for *_, sequence, number in sorted(invoices.rows, key=lambda row: row[4])
        if number != format_number(sequence)
    )
    offenders.extend(
        f"sequence {n} outside 1..{highest}" for n in sorted(sequences) if not 1 <= n <= highest
    )
    return result_of(
        "I7",
        "invoice numbers gapless, unique and INV-%06d of the sequence",
        offenders,
        f"{len(invoices.rows)} invoices, counter at {invoices.counter}",
    )
