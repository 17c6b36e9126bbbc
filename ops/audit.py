"""The consistency audit: does the whole system still keep its promises?

``orderflow audit`` reads both databases (and, when a broker is configured, the
depth of the dead-letter queues) and checks seven invariants across the two
services. Cross-database joins are impossible, so each side's needed columns are
read once, set-based, into compact tuples and compared in Python (fine for
100k orders).

Reads are ordered so that a live system does not produce false alarms: the
invoice counter, then invoices, then orders. An invoice is always committed
before its order is confirmed, and an order before its invoice is issued, so an
invoice seen always has its order, and an order confirmed before the invoice
snapshot always has its invoice in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from invoices import models as invoices_models
from invoices import service as invoices_service
from invoices.domain import InvoiceStatus, format_number
from ops.settings import Settings
from ops.shared.clock import utcnow
from ops.shared.dead_letters import DeadLetterRecord, unreplayed
from ops.shared.outbox import OutboxRecord
from orders import models as orders_models
from orders.domain import Status

MAX_OFFENDERS = 20
SETTLED = (Status.CONFIRMED.value, Status.PAID.value, Status.CANCELLED.value)
INVOICED = (Status.CONFIRMED.value, Status.PAID.value)
LIVE_INVOICE = (InvoiceStatus.ISSUED.value, InvoiceStatus.PAID.value)
DEAD_LETTER_QUEUES: dict[str, type[DeadLetterRecord]] = {
    "orders.XQ": orders_models.DeadLetter,
    "invoices.XQ": invoices_models.DeadLetter,
}
OUTBOXES: dict[str, type[OutboxRecord]] = {
    "orders": orders_models.OutboxEvent,
    "invoices": invoices_models.OutboxEvent,
}
# Dramatiq keeps a message in a ``.XQ`` queue for 7 days (its ``dead_message_ttl``);
# a dead letter recorded longer ago than that can no longer be in the queue.
DEAD_MESSAGE_TTL = dt.timedelta(days=7)
INVOICE_COUNTER = invoices_service.COUNTER


@dataclasses.dataclass(frozen=True)
class InvariantResult:
    """One invariant: holds or not, how many offenders, and the first of them."""

    code: str
    title: str
    ok: bool
    count: int
    offenders: list[str]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class AuditReport:
    """The audit's findings, one result per invariant, in order."""

    at: dt.datetime
    results: list[InvariantResult]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    def result(self, code: str) -> InvariantResult:
        return next(result for result in self.results if result.code == code)

    def failed(self) -> list[str]:
        return [result.code for result in self.results if not result.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds") + "Z",
            "ok": self.ok,
            "invariants": [result.to_dict() for result in self.results],
        }

    def render_text(self, shown: int = 3) -> str:
        """A table for people: code, title, PASS/FAIL, count, first offenders."""
        rows = [("code", "invariant", "result", "count", "first offenders")]
        for result in self.results:
            first = ", ".join(result.offenders[:shown])
            if result.count > shown:
                first += f", … (+{result.count - min(shown, len(result.offenders))})"
            elif not result.offenders and result.detail:
                first = result.detail
            rows.append(
                (
                    result.code,
                    result.title,
                    "PASS" if result.ok else "FAIL",
                    str(result.count),
                    first,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = []
        for index, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in [*widths, 15]))
        verdict = "all invariants hold" if self.ok else f"FAILED: {', '.join(self.failed())}"
        lines.append("")
        lines.append(f"audit at {self.at.isoformat(timespec='seconds')}Z: {verdict}")
        return "\n".join(lines)


def _result(
    code: str, title: str, offenders: Iterable[object], detail: str = ""
) -> InvariantResult:
    offenders = [str(offender) for offender in offenders]
    return InvariantResult(
        code, title, not offenders, len(offenders), offenders[:MAX_OFFENDERS], detail
    )


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, str):  # SQLite may hand back text
        return dt.datetime.fromisoformat(value)
    return value  # type: ignore[return-value]


# -- snapshots: compact tuples of each side ----------------------------------


@dataclasses.dataclass(frozen=True)
class _Invoices:
    counter: int
    # (order_id, status, total_minor, currency, sequence, number)
    rows: list[tuple[str, str, int, str, int, str]]
    read_at: dt.datetime


def _read_invoices() -> _Invoices:
    Invoice, InvoiceCounter = invoices_models.Invoice, invoices_models.InvoiceCounter
    with invoices_models.database.atomic():
        read_at = utcnow()
        counter = (
            InvoiceCounter.select(peewee.fn.MAX(InvoiceCounter.last_value))
            .where(InvoiceCounter.name == INVOICE_COUNTER)
            .scalar()
        )
        rows = list(
            Invoice.select(
                Invoice.order_id,
                Invoice.status,
                Invoice.total_minor,
                Invoice.currency,
                Invoice.sequence,
                Invoice.number,
            )
            .tuples()
            .iterator()
        )
    return _Invoices(int(counter or 0), rows, read_at)


def _read_orders() -> dict[str, tuple[str, int, str, dt.datetime | None]]:
    """order id → (status, total_minor, currency, settled_at)."""
    Order = orders_models.Order
    query = Order.select(
        Order.id, Order.status, Order.total_minor, Order.currency, Order.settled_at
    ).tuples()
    return {
        str(order_id): (status, total, currency, _as_datetime(settled_at))
        for order_id, status, total, currency, settled_at in query.iterator()
    }


# -- the invariants ------------------------------------------------------------


def _overdue_orders(now: dt.datetime, deadline_seconds: float) -> InvariantResult:
    Order = orders_models.Order
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


def _one_invoice_per_order(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]], invoices: _Invoices
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
    return _result(
        "I2",
        "exactly one invoice per confirmed or paid order, none orphaned",
        offenders,
        "order ids (missing, duplicated or orphan invoices)",
    )


def _cancelled_without_live_invoice(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]],
    invoices: _Invoices,
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
    return _result(
        "I3", "no cancelled order has an issued or paid invoice", sorted(offenders), "order ids"
    )


def _amounts_agree(
    orders: Mapping[str, tuple[str, int, str, dt.datetime | None]], invoices: _Invoices
) -> InvariantResult:
    offenders = []
    for order_id, _status, total, currency, _sequence, _number in invoices.rows:
        order = orders.get(order_id)
        if order is not None and (order[1], order[2]) != (total, currency):
            offenders.append(order_id)
    return _result(
        "I4", "invoice total and currency equal the order's", sorted(offenders), "order ids"
    )


def _outbox_published(now: dt.datetime, threshold_seconds: float) -> InvariantResult:
    cutoff = now - dt.timedelta(seconds=threshold_seconds)
    count = 0
    offenders: list[str] = []
    for service, model in OUTBOXES.items():
        query = model.select(model.event_id).where(
            model.published_at.is_null() & (model.created_at < cutoff)
        )
        count += query.count()
        listed = query.order_by(model.seq).limit(MAX_OFFENDERS).tuples()
        offenders.extend(f"{service}:{event_id}" for (event_id,) in listed)
    return InvariantResult(
        "I5",
        "no outbox event unpublished for longer than the threshold",
        count == 0,
        count,
        offenders[:MAX_OFFENDERS],
        f"threshold {threshold_seconds:g}s",
    )


def _dead_letters_recorded(
    now: dt.datetime, broker_depth: Mapping[str, int] | None
) -> InvariantResult:
    title = "every dead-lettered message has a database record"
    waiting = {queue: unreplayed(model) for queue, model in DEAD_LETTER_QUEUES.items()}
    if broker_depth is None:
        detail = "broker not checked; unreplayed " + ", ".join(
            f"{queue}={count}" for queue, count in waiting.items()
        )
        return InvariantResult("I6", title, True, 0, [], detail)
    offenders = []
    details = []
    for queue, model in DEAD_LETTER_QUEUES.items():
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
    return _result("I6", title, offenders, "; ".join(details))


def _invoice_numbers_gapless(invoices: _Invoices) -> InvariantResult:
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
    return _result(
        "I7",
        "invoice numbers gapless, unique and INV-%06d of the sequence",
        offenders,
        f"{len(invoices.rows)} invoices, counter at {invoices.counter}",
    )


def run_audit(
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    deadline_seconds: float | None = None,
    outbox_threshold_seconds: float = 60.0,
    broker_depth: Mapping[str, int] | None = None,
) -> AuditReport:
    """Check the seven invariants; both databases must be initialised
    (``ops.bootstrap.init_databases``). ``now`` is naive UTC, as the databases store it;
    ``broker_depth`` maps ``orders.XQ``/``invoices.XQ`` to their message counts (None:
    the broker is not checked)."""
    now = now or utcnow()
    deadline = settings.saga_timeout if deadline_seconds is None else deadline_seconds
    invoices = _read_invoices()  # before the orders: see the module's docstring
    orders = _read_orders()
    grace_cutoff = now - dt.timedelta(seconds=outbox_threshold_seconds)
    results = [
        _overdue_orders(now, deadline),
        _one_invoice_per_order(orders, invoices),
        _cancelled_without_live_invoice(orders, invoices, grace_cutoff),
        _amounts_agree(orders, invoices),
        _outbox_published(now, outbox_threshold_seconds),
        _dead_letters_recorded(now, broker_depth),
        _invoice_numbers_gapless(invoices),
    ]
    return AuditReport(now, results)


def dead_letter_depths(settings: Settings) -> dict[str, int] | None:
    """Messages in ``orders.XQ`` and ``invoices.XQ`` (passive declare); None without a broker.

    A queue that does not exist yet holds no messages."""
    if settings.broker_url is None:
        return None
    import pika

    from actors.broker import with_connection_defaults

    parameters = pika.URLParameters(with_connection_defaults(settings.broker_url))
    depths = {}
    connection = pika.BlockingConnection(parameters)
    try:
        for queue in DEAD_LETTER_QUEUES:
            channel = connection.channel()
            try:
                depths[queue] = channel.queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                depths[queue] = 0
            else:
                channel.close()
    finally:
        connection.close()
    return depths


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``orderflow audit [--json] [--outbox-threshold SECONDS]``: 0 if all hold, else 1."""
    from ops import bootstrap

    databases = bootstrap.init_databases(settings)
    try:
        report = run_audit(
            settings,
            outbox_threshold_seconds=args.outbox_threshold,
            broker_depth=dead_letter_depths(settings),
        )
    finally:
        for database in databases.values():
            database.close()
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(report.render_text() + "\n")
    return 0 if report.ok else 1


__all__ = [
    "AuditReport",
    "InvariantResult",
    "dead_letter_depths",
    "main",
    "run_audit",
]
