"""Actors of the ``invoices`` queue: the invoices side of the saga.

``issue_invoice`` ↔ ``void_invoice``: the step and its compensation;
``issue_invoices`` is the batch form of ``issue_invoice`` (``actors.batches``). When
``issue_invoice`` exhausts its retries, :func:`fail_issuance` records the dead
letter and emits ``InvoiceFailed``, which cancels the order as ``invoice_failed``.
"""

from __future__ import annotations

import dramatiq

from actors import batches
from actors.catalogue import INVOICES_QUEUE
from actors.middleware import DeadLetterHandler, dead_letter_fields
from actors.poison import undecodable_fields
from actors.steps import declare as declare_steps
from actors.steps import outcome
from invoices import service


def issue_invoice(
    order_id: str, customer_id: str, total: str, currency: str, *, dedupe_key: str
) -> None:
    """On ``OrderPlaced``: issue the invoice within the customer's credit, or reject it."""
    result = service.issue_invoice(order_id, customer_id, total, currency, dedupe_key=dedupe_key)
    outcome("issue_invoice", order_id, dedupe_key, result)


def void_invoice(order_id: str, customer_id: str, reason: str, *, dedupe_key: str) -> None:
    """On ``OrderCancelled``: void the order's invoice, or bar it from being issued."""
    result = service.void_invoice(order_id, customer_id, reason, dedupe_key=dedupe_key)
    outcome("void_invoice", order_id, dedupe_key, result)


def issue_invoices(events: list[dict[str, object]], around: batches.Around) -> list[str]:
    """A batch of ``OrderPlaced``: :func:`issue_invoice` for each, in one transaction."""
    requests = batches.requests_of(service.IssueRequest, events)
    return service.issue_invoices(requests, around)


def fail_issuance(message: dramatiq.Message, error: str, attempts: int) -> None:
    """``issue_invoice`` failed for good: record it and end the saga with ``InvoiceFailed``."""
    fields = dead_letter_fields(message, error, attempts)
    order_id = str(fields.pop("order_id"))
    fields.pop("error")
    service.fail_issuance(order_id, error, **fields)


def record_dead_letter(message: dramatiq.Message, error: str, attempts: int) -> None:
    """Another invoices step failed for good: keep it for operators to replay."""
    service.record_dead_letter(**dead_letter_fields(message, error, attempts))


def record_undecodable(body: bytes, error: str, redelivered: bool = False) -> None:
    """A body on this queue is not a message at all: keep it for operators (not replayable).

    A redelivered body that is already recorded is not recorded again: its worker died
    after recording it and before the nack reached RabbitMQ."""
    service.record_dead_letter(
        **undecodable_fields(INVOICES_QUEUE, body, error), unless_recorded=redelivered
    )


ACTORS = (issue_invoice, void_invoice)
BATCHES = (batches.BatchStep("issue_invoices", issue_invoices),)
DEAD_LETTER_HANDLERS: dict[str, DeadLetterHandler] = {"issue_invoice": fail_issuance}


def declare(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor]:
    """Declare the invoices-queue actors on ``broker``."""
    return declare_steps(broker, INVOICES_QUEUE, ACTORS) | batches.declare(broker, BATCHES)
