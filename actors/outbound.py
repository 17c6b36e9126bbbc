"""From outbox rows to confirmed messages: what a relay hands the broker.

:func:`batch_publisher` turns a relay's batch of rows into messages
(:func:`plan`): each event becomes the messages the catalogue routes it to, except
that the events of one route with a batch actor travel together, up to
``catalogue.MAX_BATCH`` of them, as one batch message (a lone one stays a plain
message). A plain message's PRODUCER span is opened in the trace of the request that
wrote its row; a batch message's span links to each of its events' traces. The
whole batch is published with pipelined confirms
(:meth:`actors.rabbitmq.OrderflowRabbitmqBroker.publish_confirmed`), and the rows
whose every message the broker confirmed are reported, in order up to the first
row that is not. Brokers without pipelined confirms (the stub broker of standalone
mode and unit tests, or a broker with confirms turned off) publish message by
message.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import dramatiq

from actors import catalogue
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.relay import BatchPublisher, PublishIncomplete
from ops.shared.telemetry.tracing import restored


@dataclass
class Planned:
    """One message to publish, the rows it carries events of, and the trace it is sent in
    (a plain message: its row's; a batch message: none, its span links to its events)."""

    message: dramatiq.Message
    seqs: list[int]
    trace_context: dict[str, str] | str | None = None  # a carrier, or its JSON

    def traced(self) -> AbstractContextManager[object]:
        return restored(self.trace_context) if self.trace_context else nullcontext()


@dataclass
class _Group:
    route: catalogue.Route
    event_type: str
    rows: list[tuple[OutboxRecord, dict]] = field(default_factory=list)  # with payloads


def plan(rows: list[OutboxRecord]) -> list[Planned]:
    """The messages for ``rows``, in the order of their first row (see the module)."""
    slots: list[Planned | _Group] = []
    groups: dict[tuple[str, str], _Group] = {}
    for row in rows:
        payload = json.loads(row.payload)
        for route in catalogue.routes_of(row.event_type):
            if route.batch is None:
                message = catalogue.message_for(route, row.event_type, str(row.event_id), payload)
                slots.append(Planned(message, [row.seq], row.trace_context))
                continue
            key = (row.event_type, route.batch)
            group = groups.get(key)
            if group is None or len(group.rows) == catalogue.MAX_BATCH:
                group = groups[key] = _Group(route, row.event_type)
                slots.append(group)
            group.rows.append((row, payload))
    return [planned for slot in slots for planned in _expand(slot)]


def _expand(slot: Planned | _Group) -> Iterator[Planned]:
    if isinstance(slot, Planned):
        yield slot
        return
    if len(slot.rows) == 1:
        ((row, payload),) = slot.rows
        message = catalogue.message_for(slot.route, slot.event_type, str(row.event_id), payload)
        yield Planned(message, [row.seq], row.trace_context)
        return
    events = [
        catalogue.BatchEvent(
            str(row.event_id),
            payload,
            json.loads(row.trace_context) if row.trace_context else None,
        )
        for row, payload in slot.rows
    ]
    message = catalogue.batch_message(slot.route, slot.event_type, events)
    yield Planned(message, [row.seq for row, _ in slot.rows])


def confirmed_rows(
    rows: list[OutboxRecord], planned: list[Planned], confirmed: Collection[str]
) -> list[int]:
    """The seqs of ``rows`` whose every message is in ``confirmed``, in order, up to the
    first row that has one that is not."""
    pending = {
        seq for item in planned if item.message.message_id not in confirmed for seq in item.seqs
    }
    done: list[int] = []
    for row in rows:
        if row.seq in pending:
            break
        done.append(row.seq)
    return done


def batch_publisher(broker: dramatiq.Broker) -> BatchPublisher:
    """The relay's publisher for ``broker``: pipelined confirms where the broker has them,
    else message by message through ``enqueue`` (the stub broker; or a RabbitMQ broker
    built with ``confirm_delivery=False``, which then publishes without confirms as
    configured)."""
    if not hasattr(broker, "publish_confirmed") or not getattr(broker, "confirm_delivery", False):

        def publish_one_by_one(rows: list[OutboxRecord]) -> list[int]:
            planned = plan(rows)
            confirmed: set[str] = set()
            for item in planned:
                try:
                    with item.traced():  # join the trace that caused it
                        broker.enqueue(item.message)
                except Exception as exc:
                    raise PublishIncomplete(confirmed_rows(rows, planned, confirmed), exc) from exc
                confirmed.add(item.message.message_id)
            return confirmed_rows(rows, planned, confirmed)

        return publish_one_by_one

    def publish_batch(rows: list[OutboxRecord]) -> list[int]:
        planned = plan(rows)
        try:
            confirmed = publish_pipelined(broker, planned)
        except PublishIncomplete as exc:
            raise PublishIncomplete(
                confirmed_rows(rows, planned, exc.confirmed), exc.cause
            ) from exc
        return confirmed_rows(rows, planned, confirmed)

    return publish_batch


def publish_pipelined(broker: dramatiq.Broker, planned: list[Planned]) -> set[str]:
    """Publish ``planned`` with one wait for all confirms, each message's PRODUCER span in
    its trace; returns the confirmed message ids (all of them), or raises
    :class:`PublishIncomplete` with those confirmed before a failure."""
    for item in planned:
        with item.traced():
            broker.emit_before("enqueue", item.message, None)
    messages = [item.message for item in planned]
    failure: PublishIncomplete | None = None
    try:
        broker.publish_confirmed(messages)  # type: ignore[attr-defined]
        confirmed = {message.message_id for message in messages}
    except PublishIncomplete as exc:
        failure, confirmed = exc, exc.confirmed
    for message in messages:
        if message.message_id in confirmed:
            broker.emit_after("enqueue", message, None)
    if failure is not None:
        raise failure
    return confirmed
