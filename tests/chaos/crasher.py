"""Makes ``issue_invoice`` kill its own worker process for customers named ``crash-…``.

Loaded as an extra module of the invoices worker for the poison scenario (F7):
``dramatiq ops.worker:invoices tests.chaos.crasher``. The process dies with
SIGKILL mid-message, every time, which no exception handler can see: only the
durable redelivery count can stop the loop.
"""

from __future__ import annotations

import os
import signal

import dramatiq

CRASH_PREFIX = "crash-"

actor = dramatiq.get_broker().get_actor("issue_invoice")
original = actor.fn


def crashing_issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> None:
    if customer_id.startswith(CRASH_PREFIX):
        os.kill(os.getpid(), signal.SIGKILL)
    original(order_id, customer_id, total, currency, dedupe_key=dedupe_key)


actor.fn = crashing_issue_invoice
