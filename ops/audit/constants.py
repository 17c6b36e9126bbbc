"""The audit's constants: what counts as settled, invoiced, live; where dead letters are."""

from __future__ import annotations

import datetime as dt

from invoices import service as invoices_service
from invoices.domain import InvoiceStatus
from ops.services import NAMES
from orders.domain import Status

MAX_OFFENDERS = 20
SETTLED = (Status.CONFIRMED.value, Status.PAID.value, Status.CANCELLED.value)
INVOICED = (Status.CONFIRMED.value, Status.PAID.value)
LIVE_INVOICE = (InvoiceStatus.ISSUED.value, InvoiceStatus.PAID.value)
# every queue of the saga: each service's, its delay queue (.DQ) and its dead letters (.XQ)
QUEUES = tuple(f"{service}{suffix}" for service in NAMES for suffix in ("", ".DQ", ".XQ"))
# Dramatiq keeps a message in a ``.XQ`` queue for 7 days (its ``dead_message_ttl``);
# a dead letter recorded longer ago than that can no longer be in the queue.
DEAD_MESSAGE_TTL = dt.timedelta(days=7)
INVOICE_COUNTER = invoices_service.COUNTER
