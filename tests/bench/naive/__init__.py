"""The naive reference chain: the shortcut the benchmark measures orderflow against.

It is what a competent developer writes first for the same order → invoice
flow, on the same stack (Falcon on waitress, peewee on two PostgreSQL
databases, Dramatiq on RabbitMQ) and with tables of the same shape:

- ``POST /orders`` inserts the order, then calls ``issue_invoice.send()``;
- ``issue_invoice`` inserts the invoice, then sends ``confirm_order``;
- ``confirm_order`` marks the order confirmed.

What it leaves out, compared with orderflow: the transactional outbox and its
relay (a crash or a broker outage between the insert and ``send()`` leaves the
order pending forever), publisher confirms (``send()`` returns before RabbitMQ
has the message), deduplication of redelivered messages, idempotency keys on
``POST``, tracing and metrics, the saga deadline and the compensations
(credit checks, rejections, voids, cancellations), dead-letter records, and a
gapless invoice numbering (a PostgreSQL sequence stands in for it). Dramatiq's
default middleware (its retries included) is all the robustness it has.

Run it from the repository root (see ``__main__``); the environment is read
only by :func:`load_config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NaiveConfig:
    """Where the naive chain finds its two databases and its broker (a vhost of its own)."""

    orders_database_url: str = "postgresql://postgres@127.0.0.1:5432/naive_orders"
    invoices_database_url: str = "postgresql://postgres@127.0.0.1:5432/naive_invoices"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/naive"


def load_config(environ: Mapping[str, str] | None = None) -> NaiveConfig:
    """The configuration from ``NAIVE_ORDERS_DATABASE_URL``, ``NAIVE_INVOICES_DATABASE_URL``
    and ``NAIVE_BROKER_URL``; a variable that is unset or empty keeps its default."""
    env = os.environ if environ is None else environ
    defaults = NaiveConfig()
    return NaiveConfig(
        orders_database_url=env.get("NAIVE_ORDERS_DATABASE_URL") or defaults.orders_database_url,
        invoices_database_url=(
            env.get("NAIVE_INVOICES_DATABASE_URL") or defaults.invoices_database_url
        ),
        broker_url=env.get("NAIVE_BROKER_URL") or defaults.broker_url,
    )


__all__ = ["NaiveConfig", "load_config"]
