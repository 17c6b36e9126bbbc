"""The message catalogue: each outbox event and the actor messages the relay makes of it.

Actor names are unique in the system and are part of its interface (they
become metric labels and dead-letter records): renaming one is a breaking change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dramatiq

ORDERS_QUEUE = "orders"
INVOICES_QUEUE = "invoices"


@dataclass(frozen=True)
class Route:
    """One consumer of an event: the actor and queue, and how its arguments are built."""

    queue: str
    actor: str
    take: tuple[str, ...] | None = None  # payload fields passed on; None means all
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        chosen = payload if self.take is None else {key: payload[key] for key in self.take}
        return {**chosen, **self.fixed}


ROUTES: dict[str, tuple[Route, ...]] = {
    # orders outbox
    "OrderPlaced": (Route(INVOICES_QUEUE, "issue_invoice"),),
    "OrderCancelled": (Route(INVOICES_QUEUE, "void_invoice"),),
    # invoices outbox
    "InvoiceIssued": (Route(ORDERS_QUEUE, "confirm_order"),),
    "InvoiceRejected": (
        Route(ORDERS_QUEUE, "cancel_order", ("order_id",), {"reason": "credit_rejected"}),
    ),
    "InvoiceFailed": (
        Route(ORDERS_QUEUE, "cancel_order", ("order_id",), {"reason": "invoice_failed"}),
    ),
    "InvoicePaid": (Route(ORDERS_QUEUE, "mark_order_paid"),),
    "InvoiceVoided": (),  # recorded for audit; no step follows
}


def messages_for(
    event_type: str, event_id: str, payload: Mapping[str, Any]
) -> list[dramatiq.Message]:
    """The messages to publish for one outbox event.

    Each message carries the event id as ``dedupe_key``; its message id is
    derived from the event id and the actor, so a republished event produces
    the very same message ids.
    """
    if event_type not in ROUTES:
        raise KeyError(f"no route for event type {event_type!r}")
    messages = []
    for route in ROUTES[event_type]:
        kwargs = route.arguments(payload)
        kwargs["dedupe_key"] = event_id
        messages.append(
            dramatiq.Message(
                queue_name=route.queue,
                actor_name=route.actor,
                args=(),
                kwargs=kwargs,
                options={"event_type": event_type, "order_id": payload.get("order_id")},
                message_id=str(uuid.uuid5(uuid.UUID(event_id), route.actor)),
            )
        )
    return messages
