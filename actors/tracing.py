"""Trace propagation through Dramatiq, following the OpenTelemetry messaging conventions.

- Sending a message opens a PRODUCER span (``publish <queue>``) and writes its W3C
  ``traceparent`` into the message options (``trace_context``).
- Processing opens a CONSUMER span (``process <queue>``) whose parent is that
  producer span; it is the current span inside the actor, so SQL and log lines
  join the trace. Errors set the span's status; the context is detached after.
- A retry or a delayed message is re-sent from the worker: with no span current
  there, the producer span continues the trace stored in the message itself.

- A batch message (``actors.batches``) belongs to no one order: its PRODUCER and
  CONSUMER spans link to the trace of each event it carries (the messaging
  conventions for batches), and each event is then processed in a span of its own
  (:func:`event_span`) whose parent is that event's context, so every order's own
  trace still shows its step.

We write our own instead of the third-party Dramatiq instrumentor, which drops
message options (and with them retries' state).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import q_name
from dramatiq.middleware import Middleware
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from actors.catalogue import EVENTS
from ops.shared.telemetry.tracing import carried_context, carried_span_context

OPTION = "trace_context"
tracer = trace.get_tracer("orderflow.dramatiq")


def _attributes(message: dramatiq.Message, operation: str) -> dict[str, Any]:
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation,
        "messaging.destination.name": q_name(message.queue_name),
        "messaging.message.id": message.message_id,
        "messaging.dramatiq.actor": message.actor_name,
    }
    for key in ("dedupe_key", "order_id"):
        value = message.kwargs.get(key)
        if value:
            attributes[f"orderflow.{key}"] = str(value)
    events = message.kwargs.get(EVENTS)
    if isinstance(events, list):
        attributes["messaging.batch.message_count"] = len(events)
    return attributes


def _links(message: dramatiq.Message) -> list[Link]:
    """Links to the trace of each event a batch message carries (none for a plain one)."""
    events = message.kwargs.get(EVENTS) if isinstance(message.kwargs, dict) else None
    if not isinstance(events, list):
        return []
    links = []
    for event in events:
        carrier = event.get("trace_context") if isinstance(event, dict) else None
        linked = carried_span_context(carrier)
        if linked is not None:
            links.append(Link(linked))
    return links


@contextmanager
def event_span(queue_name: str, actor: str, event: Mapping[str, Any]) -> Iterator[None]:
    """Process one event of a batch in a CONSUMER span named like a plain message's, whose
    parent is the event's own trace context (the batch's span if it carries none) and which
    links to the batch's span. The span is current in the block; an exception is recorded
    on it, marks it as an error, and propagates."""
    batch = trace.get_current_span().get_span_context()
    attributes: dict[str, Any] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.destination.name": queue_name,
        "messaging.dramatiq.actor": actor,
    }
    for key in ("dedupe_key", "order_id"):
        if event.get(key):
            attributes[f"orderflow.{key}"] = str(event[key])
    span = tracer.start_span(
        f"process {queue_name}",
        context=carried_context(event.get("trace_context")),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=[Link(batch)] if batch.is_valid else None,
    )
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()
        context.detach(token)


class Tracing(Middleware):
    """Dramatiq middleware: producer and consumer spans, context carried in the message."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _producers(self) -> dict[str, Any]:
        producers = getattr(self._local, "producers", None)
        if producers is None:
            producers = self._local.producers = {}
        return producers

    def _consumers(self) -> list[Any]:
        consumers = getattr(self._local, "consumers", None)
        if consumers is None:
            consumers = self._local.consumers = []
        return consumers

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int | None
    ) -> None:
        """Runs before a message is sent: open the PRODUCER span, stamp its context."""
        parent = None
        if not trace.get_current_span().get_span_context().is_valid:
            parent = propagate.extract(message.options.get(OPTION) or {})
        span = tracer.start_span(
            f"publish {q_name(message.queue_name)}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=_attributes(message, "publish"),
            links=_links(message),
        )
        if delay:
            span.set_attribute("orderflow.delay_ms", delay)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        message.options[OPTION] = carrier
        producers = self._producers()
        earlier = producers.pop(message.message_id, None)
        if earlier is not None:  # the broker is retrying a publish that failed
            earlier.set_status(Status(StatusCode.ERROR, "publish failed; retried"))
            earlier.end()
        producers[message.message_id] = span

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int | None
    ) -> None:
        """Runs after the broker took the message (confirmed): close the PRODUCER span."""
        span = self._producers().pop(message.message_id, None)
        if span is not None:
            span.end()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        """Runs before the actor: open the CONSUMER span and make it current."""
        parent = propagate.extract(message.options.get(OPTION) or {})
        span = tracer.start_span(
            f"process {q_name(message.queue_name)}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=_attributes(message, "process"),
            links=_links(message),
        )
        span.set_attribute("messaging.dramatiq.retries", message.options.get("retries", 0))
        token = context.attach(trace.set_span_in_context(span))
        self._consumers().append((span, token))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        """Runs after the actor: record the outcome, close the span, restore the context."""
        self._finish(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        """Runs when a message is skipped before its actor ran."""
        self._finish(None)

    def _finish(self, exception: BaseException | None) -> None:
        stack = self._consumers()
        if not stack:
            return
        span, token = stack.pop()
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        context.detach(token)
