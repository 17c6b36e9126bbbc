"""Running the audit: read, check, report; ``orderflow audit`` calls :func:`main`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping

from ops.audit.constants import QUEUES
from ops.audit.invariants import (
    amounts_agree,
    cancelled_without_live_invoice,
    dead_letters_recorded,
    invoice_numbers_gapless,
    one_invoice_per_order,
    outbox_published,
    overdue_orders,
)
from ops.audit.report import AuditReport
from ops.audit.snapshot import read_invoices, read_orders
from ops.services import NAMES
from ops.settings import Settings
from ops.shared.values.clock import utcnow


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
    invoices = read_invoices()  # before the orders: see the ops.audit docstring
    orders = read_orders()
    grace_cutoff = now - dt.timedelta(seconds=outbox_threshold_seconds)
    results = [
        overdue_orders(now, deadline),
        one_invoice_per_order(orders, invoices),
        cancelled_without_live_invoice(orders, invoices, grace_cutoff),
        amounts_agree(orders, invoices),
        outbox_published(now, outbox_threshold_seconds),
        dead_letters_recorded(now, broker_depth),
        invoice_numbers_gapless(invoices),
    ]
    return AuditReport(now, results)


def dead_letter_depths(settings: Settings) -> dict[str, int] | None:
    """Messages in ``orders.XQ`` and ``invoices.XQ`` (passive declare); None without a broker.

    A queue that does not exist yet holds no messages."""
    depths = queue_depths(settings, [f"{service}.XQ" for service in NAMES])
    if depths is None:
        return None
    return {queue: messages for queue, (messages, _) in depths.items()}


def queue_depths(
    settings: Settings, queues: Iterable[str] = QUEUES
) -> dict[str, tuple[int, int]] | None:
    """``queue → (messages ready, consumers)`` by passive declare, on one connection;
    None without a broker. A queue that does not exist yet is ``(0, 0)``."""
    if settings.broker_url is None:
        return None
    import pika

    from actors.broker import connection_parameters

    parameters = connection_parameters(settings.broker_url)
    depths = {}
    connection = pika.BlockingConnection(parameters)
    try:
        for queue in queues:
            channel = connection.channel()
            try:
                method = channel.queue_declare(queue, passive=True).method
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                depths[queue] = (0, 0)
            else:
                depths[queue] = (method.message_count, method.consumer_count)
                channel.close()
    finally:
        connection.close()
    return depths


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``orderflow audit [--json] [--outbox-threshold S] [--deadline S]``: 0 if all hold, else 1."""
    from ops import bootstrap

    databases = bootstrap.init_databases(settings)
    try:
        report = run_audit(
            settings,
            outbox_threshold_seconds=args.outbox_threshold,
            deadline_seconds=args.deadline,
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
