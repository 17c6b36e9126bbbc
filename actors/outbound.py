"""From outbox rows to confirmed messages: what a relay hands the broker.

:func:`batch_publisher` turns each row into the messages the catalogue routes
its event to, opens each message's PRODUCER span in the trace of the request
that wrote the row, publishes the whole batch with pipelined confirms
(:meth:`actors.rabbitmq.OrderflowRabbitmqBroker.publish_confirmed`) and
reports the rows whose every message the broker confirmed, in order up to the
first row that is not. Brokers without pipelined confirms (the stub broker of
standalone mode and unit tests, or a broker with confirms turned off) publish
row by row.
"""

from __future__ import annotations

import json

import dramatiq

from actors import catalogue
from actors.pipeline import PublishIncomplete
from ops.shared.outbox import OutboxRecord
from ops.shared.relay import BatchPublisher, PublishFailed, one_by_one
from ops.shared.tracing import restored


def messages_of(row: OutboxRecord) -> list[dramatiq.Message]:
    """The actor messages the catalogue routes ``row``'s event to."""
    return catalogue.messages_for(row.event_type, str(row.event_id), json.loads(row.payload))


def batch_publisher(broker: dramatiq.Broker) -> BatchPublisher:
    """The relay's publisher for ``broker``: pipelined confirms where the broker has them,
    else row by row through ``enqueue`` (the stub broker; or a RabbitMQ broker built with
    ``confirm_delivery=False``, which then publishes without confirms as configured)."""
    if not hasattr(broker, "publish_confirmed") or not getattr(broker, "confirm_delivery", False):

        def publish_row(row: OutboxRecord) -> None:
            for message in messages_of(row):
                broker.enqueue(message)

        return one_by_one(publish_row)

    def publish_batch(rows: list[OutboxRecord]) -> list[int]:
        planned: list[tuple[int, list[dramatiq.Message]]] = []
        for row in rows:
            with restored(row.trace_context):  # join the trace that caused it
                messages = messages_of(row)
                for message in messages:
                    broker.emit_before("enqueue", message, None)
            planned.append((row.seq, messages))
        every = [message for _, messages in planned for message in messages]
        failure: PublishIncomplete | None = None
        try:
            broker.publish_confirmed(every)  # type: ignore[attr-defined]
            confirmed = {message.message_id for message in every}
        except PublishIncomplete as exc:
            failure, confirmed = exc, exc.confirmed
        for message in every:
            if message.message_id in confirmed:
                broker.emit_after("enqueue", message, None)
        done: list[int] = []
        for seq, messages in planned:
            if any(message.message_id not in confirmed for message in messages):
                break
            done.append(seq)
        if failure is not None:
            raise PublishFailed(done, failure.cause) from failure
        return done

    return publish_batch
