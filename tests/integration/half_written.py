"""Nothing half-written: every record in either database comes with the rest of its write.

Each service writes a state change, its outbox event, its saga step and the stored
idempotent response in one transaction, so after any run (and once the saga has
drained) these hold; a request that failed half-way would break one of them:

- every order has exactly one ``OrderPlaced`` event and step, and lines that add up
  to its total; a confirmed or paid order names its invoice; a cancelled order has
  its reason, its settlement time and its ``OrderCancelled`` event;
- every step and orders event belongs to an order;
- every invoice has its ``InvoiceIssued`` event, a paid one ``paid_at`` and
  ``InvoicePaid``, a void one ``voided_at``, its reason and ``InvoiceVoided``; it
  belongs to an existing order of the same customer that names no other invoice;
- every tombstone (``cancelled_orders``) is a cancelled order;
- every stored Idempotency-Key response is a success whose resource exists (a failed
  request stores nothing; a replay must not point at nothing);
- no idempotency key is still locked and no transaction is left idle and open for
  seconds (a request stuck in progress).

:func:`half_written` takes a ``query(service, sql)`` callable, so the checks can run
inside a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

Query = Callable[[str, str], list[tuple]]
SHOWN = 10  # offenders named per finding
# A relay's poll is a short transaction; idle inside one for this long is stuck.
STUCK_SECONDS = 5

ORDER_CHECKS = {
    "order without exactly one OrderPlaced event": """
        SELECT o.id::text FROM orders o
        LEFT JOIN orders_outbox e ON e.aggregate_id = o.id::text AND e.event_type = 'OrderPlaced'
        GROUP BY o.id HAVING count(e.seq) <> 1""",
    "order without exactly one OrderPlaced step": """
        SELECT o.id::text FROM orders o
        LEFT JOIN order_steps s ON s.order_id = o.id AND s.event = 'OrderPlaced'
        GROUP BY o.id HAVING count(s.seq) <> 1""",
    "confirmed or paid order without its invoice or settlement": """
        SELECT id::text FROM orders WHERE status IN ('confirmed', 'paid')
        AND (invoice_id IS NULL OR invoice_number IS NULL OR settled_at IS NULL)""",
    "cancelled order without reason, settlement or OrderCancelled event": """
        SELECT o.id::text FROM orders o WHERE o.status = 'cancelled' AND (
            o.cancel_reason IS NULL OR o.settled_at IS NULL OR NOT EXISTS (
                SELECT 1 FROM orders_outbox e
                WHERE e.aggregate_id = o.id::text AND e.event_type = 'OrderCancelled'))""",
    "step or event of no order": """
        SELECT 'step ' || s.seq FROM order_steps s
        LEFT JOIN orders o ON o.id = s.order_id WHERE o.id IS NULL
        UNION ALL
        SELECT 'event ' || e.event_id FROM orders_outbox e
        LEFT JOIN orders o ON o.id::text = e.aggregate_id WHERE o.id IS NULL""",
}
INVOICE_CHECKS = {
    "invoice without its InvoiceIssued event": """
        SELECT i.number FROM invoices i WHERE NOT EXISTS (
            SELECT 1 FROM invoices_outbox e
            WHERE e.aggregate_id = i.order_id AND e.event_type = 'InvoiceIssued')""",
    "paid invoice without paid_at or InvoicePaid event": """
        SELECT i.number FROM invoices i WHERE i.status = 'paid' AND (
            i.paid_at IS NULL OR NOT EXISTS (
                SELECT 1 FROM invoices_outbox e
                WHERE e.aggregate_id = i.order_id AND e.event_type = 'InvoicePaid'))""",
    "void invoice without voided_at, reason or InvoiceVoided event": """
        SELECT i.number FROM invoices i WHERE i.status = 'void' AND (
            i.voided_at IS NULL OR i.void_reason IS NULL OR NOT EXISTS (
                SELECT 1 FROM invoices_outbox e
                WHERE e.aggregate_id = i.order_id AND e.event_type = 'InvoiceVoided'))""",
}
# A request stuck in progress: its transaction still open, or its key still locked.
IN_PROGRESS_CHECKS = {
    "transaction left open": f"""
        SELECT pid::text || ' ' || left(query, 80) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND state IN ('idle in transaction', 'idle in transaction (aborted)')
        AND state_change < now() - interval '{STUCK_SECONDS} seconds'""",
    "idempotency key still locked": """
        SELECT objid::text FROM pg_locks WHERE locktype = 'advisory'
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
}


def half_written(query: Query) -> dict[str, list[str]]:
    """Each finding with its first offenders; empty when nothing is half-written."""
    findings = {**_within_each_database(query), **_across_databases(query)}
    return {title: offenders[:SHOWN] for title, offenders in findings.items() if offenders}


def _within_each_database(query: Query) -> dict[str, list[str]]:
    findings = {}
    for service, checks in (
        ("orders", {**ORDER_CHECKS, **IN_PROGRESS_CHECKS}),
        ("invoices", {**INVOICE_CHECKS, **IN_PROGRESS_CHECKS}),
    ):
        for title, sql in checks.items():
            findings[f"{service}: {title}"] = [str(row[0]) for row in query(service, sql)]
    return findings


def _across_databases(query: Query) -> dict[str, list[str]]:
    """The checks that need rows of both databases (or JSON): compared in Python."""
    orders = {
        order_id: (status, customer_id, invoice_id, lines, total)
        for order_id, status, customer_id, invoice_id, lines, total in query(
            "orders",
            "SELECT id::text, status, customer_id, invoice_id::text, lines, total_minor "
            "FROM orders",
        )
    }
    invoices = query(
        "invoices", "SELECT id::text, number, order_id, customer_id, paid_at FROM invoices"
    )
    tombstones = query("invoices", "SELECT order_id FROM cancelled_orders")
    paid = {invoice_id for invoice_id, *_, paid_at in invoices if paid_at is not None}
    return {
        "orders: order whose lines do not add up to its total": [
            order_id
            for order_id, (*_, lines, total) in orders.items()
            if not lines_add_up(lines, total)
        ],
        "invoices: invoice of no order, another customer or another invoice": [
            number
            for invoice_id, number, order_id, customer_id, _ in invoices
            if not belongs(orders.get(order_id), customer_id, invoice_id)
        ],
        "invoices: tombstone of an order that is not cancelled": [
            order_id
            for (order_id,) in tombstones
            if orders.get(order_id, ("missing",))[0] != "cancelled"
        ],
        "orders: stored idempotent response of a failure or of no order": stored_dangling(
            query("orders", "SELECT status, body FROM orders_idempotency_keys"), set(orders)
        ),
        "invoices: stored idempotent response of a failure or of no paid invoice": (
            stored_dangling(
                query("invoices", "SELECT status, body FROM invoices_idempotency_keys"), paid
            )
        ),
    }


def belongs(order: tuple | None, customer_id: str, invoice_id: str) -> bool:
    """The invoice's order exists, is the same customer's and names no other invoice."""
    return order is not None and order[1] == customer_id and order[2] in (None, invoice_id)


def lines_add_up(lines: str, total_minor: int) -> bool:
    """1 to 100 lines of positive quantities and prices whose sum is the order's total."""
    try:
        parsed = json.loads(lines)
        amounts = [int(line["quantity"]) * Decimal(line["unit_price"]) * 100 for line in parsed]
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return False
    return 1 <= len(parsed) <= 100 and all(a > 0 for a in amounts) and sum(amounts) == total_minor


def stored_dangling(rows: list[tuple], existing: set[str]) -> list[str]:
    """Stored responses that are not a 2xx naming an existing resource (by its ``id``)."""
    offenders = []
    for status, body in rows:
        resource = json.loads(body).get("id")
        if not 200 <= status < 300 or resource not in existing:
            offenders.append(f"{status} {resource}")
    return offenders
