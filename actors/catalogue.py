"""The message catalogue: each outbox event and the actor messages the relay makes of it.

Actor names are unique in the system and are part of its interface (they
become metric labels and dead-letter records): renaming one is a breaking change.

A route may name a *batch actor* (``issue_invoices`` for ``issue_invoice``): when a
relay publishes several events of that route at once, they travel as one message of
the batch actor whose ``events`` argument lists each event's arguments, dedupe key
and trace context (:func:`batch_message`); a lone event travels as the plain
message (:func:`messages_for`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from ops.shared.telemetry import metrics

ORDERS_QUEUE = "orders"
INVOICES_QUEUE = "invoices"


@dataclass(frozen=True)
class Route:
    """One consumer of an event: the actor and queue, and how its arguments are built."""

    queue: str
    actor: str
    take: tuple[str, ...] | None = None  # payload fields passed on; None means all
    fixed: Mapping[str, Any] = field(default_factory=dict)
    batch: str | None = None  # the actor taking many of these events in one message

    def arguments(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        chosen = payload if self.take is None else {key: payload[key] for key in self.take}
        return {**chosen, **self.fixed}


# The most events one batch message carries: a failing batch is retried, then split
# into this many plain messages.
MAX_BATCH = 50
# The argument of a batch message that lists its events.
EVENTS = "events"

ROUTES: dict[str, tuple[Route, ...]] = {
    # orders outbox
    "OrderPlaced": (Route(INVOICES_QUEUE, "issue_invoice", batch="issue_invoices"),),
    "OrderCancelled": (Route(INVOICES_QUEUE, "void_invoice"),),
    # invoices outbox
    "InvoiceIssued": (Route(ORDERS_QUEUE, "confirm_order", batch="confirm_orders"),),
    "InvoiceRejected": (
        Route(ORDERS_QUEUE, "cancel_order", ("order_id",), {"reason": "credit_rejected"}),
    ),
    "InvoiceFailed": (
        Route(ORDERS_QUEUE, "cancel_order", ("order_id",), {"reason": "invoice_failed"}),
    ),
    "InvoicePaid": (Route(ORDERS_QUEUE, "mark_order_paid"),),
    "InvoiceVoided": (),  # recorded for audit; no step follows
}


def routes_of(event_type: str) -> tuple[Route, ...]:
    """The routes of ``event_type``; ``KeyError`` for an event nobody declared."""
    if event_type not in ROUTES:
        raise KeyError(f"no route for event type {event_type!r}")
    return ROUTES[event_type]


def messages_for(
    event_type: str, event_id: str, payload: Mapping[str, Any]
) -> list[dramatiq.Message]:
    """The messages to publish for one outbox event.

    Each message carries the event id as ``dedupe_key``; its message id is
    derived from the event id and the actor, so a republished event produces
    the very same message ids.
    """
    return [message_for(route, event_type, event_id, payload) for route in routes_of(event_type)]


def message_for(
    route: Route, event_type: str, event_id: str, payload: Mapping[str, Any]
) -> dramatiq.Message:
    """The plain message of one event for one route (see :func:`messages_for`)."""
    kwargs = route.arguments(payload)
    kwargs["dedupe_key"] = event_id
    return dramatiq.Message(
        queue_name=route.queue,
        actor_name=route.actor,
        args=(),
        kwargs=kwargs,
        options={"event_type": event_type, "order_id": payload.get("order_id")},
        message_id=str(uuid.uuid5(uuid.UUID(event_id), route.actor)),
    )


@dataclass(frozen=True)
class BatchEvent:
    """One event of a batch: its id, payload and the trace context of its cause."""

    event_id: str
    payload: Mapping[str, Any]
    trace_context: Mapping[str, str] | None


def batch_message(route: Route, event_type: str, events: list[BatchEvent]) -> dramatiq.Message:
    """One message of ``route``'s batch actor carrying ``events`` (at most ``MAX_BATCH``).

    Each entry of its ``events`` argument holds what the plain message would carry
    (the route's arguments and ``dedupe_key``) plus ``trace_context``. Its message id
    is derived from the event ids, so the same events make the same message.
    """
    assert route.batch is not None and 0 < len(events) <= MAX_BATCH
    entries = []
    for event in events:
        entry = route.arguments(event.payload)
        entry["dedupe_key"] = event.event_id
        entry["trace_context"] = dict(event.trace_context) if event.trace_context else None
        entries.append(entry)
    name = f"{route.batch}:{events[-1].event_id}:{len(events)}"
    return dramatiq.Message(
        queue_name=route.queue,
        actor_name=route.batch,
        args=(),
        kwargs={EVENTS: entries},
        options={"event_type": event_type},
        message_id=str(uuid.uuid5(uuid.UUID(events[0].event_id), name)),
    )


def unbatched(route: Route, event_type: str, entry: Mapping[str, Any]) -> dramatiq.Message:
    """The plain message of one entry of a batch message: the very message (same id,
    arguments and options) the relay would have published for that event alone."""
    payload = {key: value for key, value in entry.items() if key != "trace_context"}
    return message_for(route, event_type, str(payload.pop("dedupe_key")), payload)


def batch_routes() -> dict[str, tuple[str, Route]]:
    """Every batch actor, with the event type and route it carries."""
    return {
        route.batch: (event_type, route)
        for event_type, routes in ROUTES.items()
        for route in routes
        if route.batch is not None
    }


def actors_of(queue: str) -> list[str]:
    """The actors of ``queue``'s messages, plain then batch, each once."""
    routes = [route for routes in ROUTES.values() for route in routes if route.queue == queue]
    return list(dict.fromkeys([r.actor for r in routes] + [r.batch for r in routes if r.batch]))


for _queue in (ORDERS_QUEUE, INVOICES_QUEUE):  # their dead-letter series start at 0
    metrics.declare_known(_queue, actors=actors_of(_queue))
