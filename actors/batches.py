"""Batch actors: one message carrying many events of one step, run in one transaction.

A relay that publishes several events of a route with a batch actor sends them as one
message (:func:`actors.catalogue.batch_message`). Its actor hands them all to the
service's batch function (``issue_invoices``, ``confirm_orders``): one transaction,
each event processed in a span of its own trace. What can go wrong splits the batch
instead of failing it:

- an infrastructure error (anything but ``PERMANENT_ERRORS``) raises, and Dramatiq's
  ``Retries`` retries the whole batch (safe: dedupe is per event);
- a permanent error, a batch already retried ``SPLIT_AFTER_RETRIES`` times, or a batch
  that was redelivered (its worker may have died on it) is *split*: each event is
  published, with confirms, as the plain message the relay would have sent for it
  alone (same message id, arguments and trace context), and the batch is acked.
  Those messages then take today's per-event path, with their own retries, dead
  letters (``fail_issuance``), crash-loop guard and ``orderflow dlq``.

So a batch lands in a ``.XQ`` only if the broker refused its split through every one
of ``BATCH_MAX_RETRIES`` retries; ``orderflow dlq replay`` of it then splits it again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
from dramatiq.middleware import CurrentMessage

from actors import catalogue
from actors.outbound import Planned, publish_pipelined
from actors.steps import PERMANENT_ERRORS, TIME_LIMIT_MS, outcome
from actors.tracing import event_span
from ops.shared.persistence.steps import Around

log = logging.getLogger("actors")

# Attempts a batch makes as a batch after an infrastructure error before it is split.
SPLIT_AFTER_RETRIES = 2
# Retries of a batch's split (a publish): far more than a plain step gets, so that a
# batch is not dead-lettered as a batch while the broker is merely slow to come back.
BATCH_MAX_RETRIES = 20

Apply = Callable[[list[Mapping[str, Any]], Around], list[str]]
Request = TypeVar("Request")


@dataclass(frozen=True)
class BatchStep:
    """A batch actor: its name (the catalogue route's ``batch``) and the function that
    applies a list of events in one transaction and returns their outcomes in order."""

    name: str
    apply: Apply


def requests_of(kind: Callable[..., Request], events: Sequence[Mapping[str, Any]]) -> list[Request]:
    """``events`` as ``kind`` dataclasses; ``KeyError`` (a permanent error) if one lacks a
    field."""
    names = [field.name for field in dataclasses.fields(kind)]  # type: ignore[arg-type]
    return [kind(**{name: event[name] for name in names}) for event in events]


def declare(
    broker: dramatiq.Broker, steps: Iterable[BatchStep], retries: int = BATCH_MAX_RETRIES
) -> dict[str, dramatiq.Actor]:
    """Declare each batch step as an actor of its route's queue on ``broker``."""
    routes = catalogue.batch_routes()
    actors = {}
    for step in steps:
        event_type, route = routes[step.name]
        actors[step.name] = dramatiq.actor(
            _runner(broker, step, event_type, route),
            broker=broker,
            actor_name=step.name,
            queue_name=route.queue,
            max_retries=retries,
            time_limit=TIME_LIMIT_MS,
        )
    return actors


def _runner(
    broker: dramatiq.Broker, step: BatchStep, event_type: str, route: catalogue.Route
) -> Callable[..., None]:
    def run(events: list[Mapping[str, Any]]) -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message is not None else 0
        if getattr(message, "redelivered", False) or retries >= SPLIT_AFTER_RETRIES:
            split(broker, event_type, route, events, "redelivered or retried")
            return

        def around(index: int) -> AbstractContextManager[object]:
            return event_span(route.queue, route.actor, events[index])

        try:
            outcomes = step.apply(events, around)
        except PERMANENT_ERRORS as exc:
            split(broker, event_type, route, events, f"{type(exc).__name__}: {exc}")
            return
        for event, result in zip(events, outcomes, strict=True):
            outcome(route.actor, str(event["order_id"]), str(event["dedupe_key"]), result)
        log.info("%s batch_size=%d", step.name, len(events))

    run.__name__ = step.name
    return run


def split(
    broker: dramatiq.Broker,
    event_type: str,
    route: catalogue.Route,
    events: Sequence[Mapping[str, Any]],
    why: str,
) -> None:
    """Publish each event of a batch as its plain message, with confirms where the broker
    has them, each in its event's trace; raises if the broker did not take them all (the
    batch is retried, and republishes: the ids are the same, dedupe absorbs a repeat)."""
    log.warning("%s batch of %d split into plain messages: %s", route.batch, len(events), why)
    planned = [
        Planned(catalogue.unbatched(route, event_type, event), [], event.get("trace_context"))
        for event in events
    ]
    if hasattr(broker, "publish_confirmed") and getattr(broker, "confirm_delivery", False):
        publish_pipelined(broker, planned)
        return
    for item in planned:
        with item.traced():
            broker.enqueue(item.message)
