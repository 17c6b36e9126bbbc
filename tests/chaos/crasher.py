"""Makes ``issue_invoice`` kill its own worker process for customers named ``crash-…``,
and its batch form ``issue_invoices`` refuse a batch holding one.

Loaded as an extra module of the invoices worker for the poison scenario (F7):
``dramatiq ops.worker:invoices tests.chaos.crasher``. The process dies with
SIGKILL mid-message, every time, which no exception handler can see: only the
durable redelivery count can stop the loop. A batch that dies is redelivered and
split, so the crashing event then loops on its own as a plain ``issue_invoice``.
"""

from __future__ import annotations

import os
import signal

import dramatiq

from actors import batches, catalogue

CRASH_PREFIX = "crash-"

broker = dramatiq.get_broker()
actor = broker.get_actor("issue_invoice")
original = actor.fn
batch_actor = broker.get_actor("issue_invoices")
original_batch = batch_actor.fn


def crashing_issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> None:
    if customer_id.startswith(CRASH_PREFIX):
        os.kill(os.getpid(), signal.SIGKILL)
    original(order_id, customer_id, total, currency, dedupe_key=dedupe_key)


actor.fn = crashing_issue_invoice


def crashing_issue_invoices(events: list[dict[str, object]]) -> None:
    if any(str(event.get("customer_id")).startswith(CRASH_PREFIX) for event in events):
        event_type, route = catalogue.batch_routes()["issue_invoices"]
        batches.split(broker, event_type, route, events, "a crash-loop event")
        return
    original_batch(events)


batch_actor.fn = crashing_issue_invoices
