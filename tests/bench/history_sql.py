"""The statements of the history (:mod:`tests.bench.history`): which rows each table gets.

Pure: nothing here connects. Each table's rows are one ``INSERT … SELECT`` whose
columns are SQL expressions over the history's rows ``h`` (one per order ``i``,
made by ``generate_series``); :func:`insert_sql` names only the columns the
table has. The values follow what the services write: ``orders.service``
(lines JSON, timeline steps), ``ops.shared.persistence.outbox`` (payloads as sorted,
compact JSON), ``ops.shared.persistence.dedupe`` (consumer and event id) and
``invoices.service`` (numbers as ``invoices.domain.format_number``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.bench.system import BenchSetupError

CUSTOMERS = 10_000
CHUNK = 200_000  # rows a transaction
SPAN = dt.timedelta(days=30)  # orders were created over the last SPAN
# One order in PAID_EVERY is paid, of every customer: customer c places orders c, c + 10000,
# …; i + i / CUSTOMERS (integer division) varies along them, which i alone would not.
PAID_EVERY = 10

ROWS = """(SELECT i,
        md5('bench-order-' || i)::uuid AS order_id,
        md5('bench-invoice-' || i)::uuid AS invoice_id,
        md5('bench-placed-' || i)::uuid AS placed_event,
        md5('bench-issued-' || i)::uuid AS issued_event,
        'bench-c' || mod(i, %(customers)s) AS customer_id,
        1 + mod(i + i / %(customers)s, 5) AS quantity,
        mod(i + i / %(customers)s, %(paid_every)s) = 0 AS paid,
        %(prefix)s || lpad(i::text, greatest(%(width)s, length(i::text)), '0') AS number,
        %(start)s + (i - 1) * %(step)s AS created_at
   FROM generate_series(%(low)s, %(high)s) AS i) AS h"""
ISSUED = "h.created_at + (20 + mod(h.i, 100)) * interval '1 millisecond'"
SETTLED = "h.created_at + (35 + mod(h.i, 100)) * interval '1 millisecond'"
PAID_AT = f"{SETTLED} + interval '1 hour'"
TOTAL = "(10 * h.quantity)::text || '.00'"  # unit price 10.00, as tests.bench.client orders


@dataclass(frozen=True)
class Insert:
    """One ``INSERT … SELECT`` of the history: each column's SQL expression, and its source.

    ``source`` is a ``FROM`` clause; the default, :data:`ROWS`, is the history's
    rows, made a chunk at a time. Columns in ``optional`` are filled only when the
    table has them; without a column of ``needs`` the insert is skipped (an outbox
    without ``published_at`` has no way to say the history's events were published).
    """

    table: str
    values: Mapping[str, str]
    source: str = ROWS
    optional: frozenset[str] = field(default_factory=frozenset)
    needs: frozenset[str] = field(default_factory=frozenset)

    @property
    def chunked(self) -> bool:
        """True when the rows come from the history's rows, a chunk at a time."""
        return self.source == ROWS


class SchemaMismatch(BenchSetupError):
    """A table lacks a column the history fills, or needs one it does not."""


def insert_sql(insert: Insert, existing: Collection[str], must_fill: Collection[str]) -> str | None:
    """The statement of ``insert`` for a table of ``existing`` columns; None to skip it
    (no such table, or a column of ``needs`` missing).

    Only columns that exist are named. Raises :class:`SchemaMismatch` when a
    column of ``insert`` that is not optional is missing, or when a column of
    ``must_fill`` (``NOT NULL`` without a default) gets no value.
    """
    if not existing or not insert.needs <= set(existing):
        return None
    missing = [c for c in insert.values if c not in existing and c not in insert.optional]
    unfilled = sorted(c for c in must_fill if c not in insert.values)
    if missing or unfilled:
        raise SchemaMismatch(
            f"history cannot fill {insert.table}: columns missing {missing}, "
            f"required columns it has no value for {unfilled}"
        )
    columns = [c for c in insert.values if c in existing]
    expressions = ",\n       ".join(insert.values[c] for c in columns)
    return (
        f"INSERT INTO {insert.table} ({', '.join(columns)})\n"
        f"SELECT {expressions}\nFROM {insert.source}"
    )


def chunks(count: int, size: int = CHUNK) -> list[tuple[int, int]]:
    """``1 … count`` as consecutive inclusive ranges of at most ``size`` numbers."""
    return [(low, min(low + size - 1, count)) for low in range(1, count + 1, size)]


def minor_units(amount: str) -> int:
    """A decimal amount such as ``"1000000000.00"`` in minor units."""
    return int(Decimal(amount) * 100)


def parameters(
    count: int, credit_limit_minor: int, now: dt.datetime, prefix: str, width: int
) -> dict[str, Any]:
    """The values every statement may use: orders created evenly from ``now - SPAN`` to an
    hour before ``now``; invoice numbers ``prefix`` and at least ``width`` digits."""
    return {
        "count": count,
        "customers": CUSTOMERS,
        "paid_every": PAID_EVERY,
        "start": now - SPAN,
        "step": (SPAN - dt.timedelta(hours=1)) / max(count, 1),
        "credit_limit": credit_limit_minor,
        "prefix": prefix,
        "width": width,
    }


def _json(*pairs: tuple[str, str]) -> str:
    """SQL building the compact JSON object of ``(key, SQL text expression)`` pairs."""
    parts = [f"""'"{key}":"' || {value} || '"'""" for key, value in pairs]
    return "'{' || " + " || ',' || ".join(parts) + " || '}'"


ORDERS = Insert(
    "orders",
    {
        "id": "h.order_id",
        "customer_id": "h.customer_id",
        "lines": """'[{"sku":"SKU-1","quantity":' || h.quantity || ',"unit_price":"10.00"}]'""",
        "total_minor": "1000 * h.quantity",
        "currency": "'EUR'",
        "status": "CASE WHEN h.paid THEN 'paid' ELSE 'confirmed' END",
        "invoice_id": "h.invoice_id",
        "invoice_number": "h.number",
        "created_at": "h.created_at",
        "updated_at": f"CASE WHEN h.paid THEN {PAID_AT} ELSE {SETTLED} END",
        "settled_at": SETTLED,
    },
)
PLACED_STEPS = Insert(
    "order_steps",
    {
        "order_id": "h.order_id",
        "at": "h.created_at",
        "event": "'OrderPlaced'",
        "outcome": "'pending'",
        "detail": "'order accepted; invoice requested'",
    },
)
ISSUED_STEPS = Insert(
    "order_steps",
    {
        "order_id": "h.order_id",
        "at": SETTLED,
        "event": "'InvoiceIssued'",
        "outcome": "'confirmed'",
        "detail": "'invoice ' || h.number || ' issued'",
        "dedupe_key": "h.issued_event::text",
    },
)


def _outbox(table: str, event: str, event_id: str, created: str, payload: str) -> Insert:
    """Published outbox rows of ``event`` (no trace: the history was not traced)."""
    return Insert(
        table,
        {
            "event_id": event_id,
            "event_type": f"'{event}'",
            "aggregate_id": "h.order_id::text",
            "payload": payload,
            "created_at": created,
            "published_at": f"{created} + interval '5 milliseconds'",
            "publish_attempts": "0",
            "trace_context": "NULL",
        },
        optional=frozenset({"publish_attempts", "trace_context"}),
        needs=frozenset({"published_at"}),
    )


ORDERS_OUTBOX = _outbox(
    "orders_outbox",
    "OrderPlaced",
    "h.placed_event",
    "h.created_at",
    _json(
        ("currency", "'EUR'"),
        ("customer_id", "h.customer_id"),
        ("order_id", "h.order_id"),
        ("total", TOTAL),
    ),
)
ORDERS_PROCESSED = Insert(
    "orders_processed_messages",
    {"consumer": "'confirm_order'", "dedupe_key": "h.issued_event::text", "processed_at": SETTLED},
)
INVOICES = Insert(
    "invoices",
    {
        "id": "h.invoice_id",
        "sequence": "h.i",
        "number": "h.number",
        "order_id": "h.order_id::text",
        "customer_id": "h.customer_id",
        "total_minor": "1000 * h.quantity",
        "currency": "'EUR'",
        "status": "CASE WHEN h.paid THEN 'paid' ELSE 'issued' END",
        "issued_at": ISSUED,
        "paid_at": f"CASE WHEN h.paid THEN {PAID_AT} END",
    },
)
INVOICES_OUTBOX = _outbox(
    "invoices_outbox",
    "InvoiceIssued",
    "h.issued_event",
    ISSUED,
    _json(
        ("invoice_id", "h.invoice_id"), ("invoice_number", "h.number"), ("order_id", "h.order_id")
    ),
)
INVOICES_PROCESSED = Insert(
    "invoices_processed_messages",
    {"consumer": "'issue_invoice'", "dedupe_key": "h.placed_event::text", "processed_at": ISSUED},
)
ACCOUNTS = Insert(
    "billing_accounts",
    {
        "customer_id": "'bench-c' || c",
        "credit_limit_minor": "%(credit_limit)s",
        "created_at": "%(start)s",
        "updated_at": "%(start)s",
        "outstanding_minor": "coalesce(o.outstanding, 0)",  # the sum of issued invoices
    },
    source="generate_series(0, %(customers)s - 1) AS c LEFT JOIN ("
    "SELECT customer_id, sum(total_minor) AS outstanding FROM invoices "
    "WHERE status = 'issued' GROUP BY customer_id) AS o ON o.customer_id = 'bench-c' || c",
    optional=frozenset({"outstanding_minor"}),
)
COUNTER = (
    "INSERT INTO invoice_counters (name, last_value) VALUES ('invoice', %(count)s) "
    "ON CONFLICT (name) DO UPDATE SET last_value = EXCLUDED.last_value"
)
NAIVE_SEQUENCE = "SELECT setval('invoice_numbers', %(count)s)"


@dataclass(frozen=True)
class Database:
    """What the history puts in one database of a system: inserts, then statements."""

    index: int  # in System.databases: 0 orders, 1 invoices
    inserts: tuple[Insert, ...]
    then: tuple[str, ...] = ()

    def tables(self) -> dict[str, list[Insert]]:
        """The inserts of each table, tables in the order of their first insert."""
        by_table: dict[str, list[Insert]] = {}
        for insert in self.inserts:
            by_table.setdefault(insert.table, []).append(insert)
        return by_table


PLANS: dict[str, tuple[Database, ...]] = {
    "orderflow": (
        Database(0, (ORDERS, PLACED_STEPS, ISSUED_STEPS, ORDERS_OUTBOX, ORDERS_PROCESSED)),
        Database(1, (INVOICES, INVOICES_OUTBOX, INVOICES_PROCESSED, ACCOUNTS), (COUNTER,)),
    ),
    # the naive chain has orders and invoices only, numbered by a sequence
    "naive": (Database(0, (ORDERS,)), Database(1, (INVOICES,), (NAIVE_SEQUENCE,))),
}
