"""Actors of the ``orders`` queue: the orders side of the saga.

Each step receives ids and primitives, lets ``orders.service`` dedupe and apply
it in one transaction (which also writes the next event to the outbox), and
logs the outcome. Compensation sits next to its step: ``confirm_order`` ↔
``cancel_order``. ``confirm_orders`` is the batch form of ``confirm_order``
(``actors.batches``).
"""

from __future__ import annotations

import dramatiq

from actors import batches
from actors.catalogue import ORDERS_QUEUE
from actors.middleware import DeadLetterHandler, dead_letter_fields
from actors.poison import undecodable_fields
from actors.steps import declare as declare_steps
from actors.steps import outcome
from orders import service


def confirm_order(order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str) -> None:
    """On ``InvoiceIssued``: confirm the pending order (or void the invoice of a cancelled one)."""
    result = service.confirm_order(order_id, invoice_id, invoice_number, dedupe_key=dedupe_key)
    outcome("confirm_order", order_id, dedupe_key, result)


def confirm_orders(events: list[dict[str, object]], around: batches.Around) -> list[str]:
    """A batch of ``InvoiceIssued``: :func:`confirm_order` for each, in one transaction."""
    requests = batches.requests_of(service.ConfirmRequest, events)
    return service.confirm_orders(requests, around)


def cancel_order(order_id: str, reason: str, *, dedupe_key: str) -> None:
    """On ``InvoiceRejected`` / ``InvoiceFailed``: cancel the still pending order."""
    result = service.cancel_order(order_id, reason, dedupe_key=dedupe_key)
    outcome("cancel_order", order_id, dedupe_key, result)


def mark_order_paid(
    order_id: str, invoice_id: str, invoice_number: str, *, dedupe_key: str
) -> None:
    """On ``InvoicePaid``: the order becomes paid."""
    result = service.mark_order_paid(order_id, invoice_id, invoice_number, dedupe_key=dedupe_key)
    outcome("mark_order_paid", order_id, dedupe_key, result)


def record_dead_letter(message: dramatiq.Message, error: str, attempts: int) -> None:
    """A step of the orders queue failed for good: keep it for operators.

    No compensation is needed here: an order left pending is cancelled as
    ``expired`` by the saga deadline, which voids its invoice.
    """
    service.record_dead_letter(**dead_letter_fields(message, error, attempts))


def record_undecodable(body: bytes, error: str, redelivered: bool = False) -> None:
    """A body on this queue is not a message at all: keep it for operators (not replayable).

    A redelivered body that is already recorded is not recorded again: its worker died
    after recording it and before the nack reached RabbitMQ."""
    service.record_dead_letter(
        **undecodable_fields(ORDERS_QUEUE, body, error), unless_recorded=redelivered
    )


ACTORS = (confirm_order, cancel_order, mark_order_paid)
BATCHES = (batches.BatchStep("confirm_orders", confirm_orders),)
DEAD_LETTER_HANDLERS: dict[str, DeadLetterHandler] = {}


def declare(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor]:
    """Declare the orders-queue actors on ``broker``."""
    return declare_steps(broker, ORDERS_QUEUE, ACTORS) | batches.declare(broker, BATCHES)
