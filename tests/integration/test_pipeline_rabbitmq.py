"""Pipelined publisher confirms (``actors.pipeline``, ``OrderflowRabbitmqBroker.publish_confirmed``)
and the relay that uses them, on the real RabbitMQ (and PostgreSQL for the outbox)."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlsplit

import dramatiq
import peewee
import pika
import pika.exceptions
import pytest

from actors.broker import RetryPolicy, build_broker, with_connection_defaults
from actors.outbound import batch_publisher
from actors.pipeline import ConfirmPipeline, PipelineError, PipelineTimeout
from actors.rabbitmq import OrderflowRabbitmqBroker
from ops.shared.persistence import outbox
from ops.shared.persistence.database import open_database, unit_of_work
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.relay import PublishIncomplete, Relay
from tests.chaos.proxy import Proxy

from .cluster import AMQP_BASE, broker_url, throwaway_database

QUEUE_SUFFIXES = ("", ".DQ", ".XQ")  # what Dramatiq declares for each queue
RABBITMQ = (urlsplit(AMQP_BASE).hostname or "127.0.0.1", urlsplit(AMQP_BASE).port or 5672)

outbox_database = peewee.DatabaseProxy()


class Outbox(OutboxRecord):
    """An outbox table of this module's own."""

    class Meta:
        database = outbox_database
        table_name = "pipeline_outbox"


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def channel(servers: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A plain channel of the test's own, to look at and delete queues."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(servers)))
    yield connection.channel()
    connection.close()


@pytest.fixture
def make_queue(channel) -> Iterator[Callable[[], str]]:
    """Names fresh queues; deletes them (and Dramatiq's delay and dead-letter queues) after."""
    names: list[str] = []

    def make() -> str:
        names.append(f"pipeline-{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    for name in names:
        for suffix in QUEUE_SUFFIXES:
            channel.queue_delete(name + suffix)


@pytest.fixture
def make_broker(servers: str) -> Iterator[Callable[..., OrderflowRabbitmqBroker]]:
    brokers: list[OrderflowRabbitmqBroker] = []

    def make(url: str | None = None, publish_timeout: float = 5.0) -> OrderflowRabbitmqBroker:
        brokers.append(
            OrderflowRabbitmqBroker(
                url=with_connection_defaults(url or broker_url(servers)),
                confirm_delivery=True,
                middleware=[],
                undecodable={},
                publish_timeout=publish_timeout,
            )
        )
        return brokers[-1]

    yield make
    for broker in brokers:
        broker.close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A TCP proxy in front of RabbitMQ whose link the test can blackhole."""
    link = Proxy(RABBITMQ)
    yield link
    link.close()


@pytest.fixture(scope="module")
def outbox_url(servers: str) -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped afterwards."""
    with throwaway_database("orderflow_test_pipeline") as url:
        yield url


@pytest.fixture
def outbox_db(outbox_url: str) -> Iterator[peewee.DatabaseProxy]:
    postgres = open_database(outbox_url)
    outbox_database.initialize(postgres)
    postgres.create_tables([Outbox])
    Outbox.delete().execute()
    yield outbox_database
    postgres.close()


@pytest.fixture
def relay_broker(servers: str, channel) -> Iterator[dramatiq.Broker]:
    """The production broker, over empty ``orders`` and ``invoices`` queues of the vhost."""

    def delete_queues() -> None:
        for queue in ("orders", "invoices"):
            for suffix in QUEUE_SUFFIXES:
                channel.queue_delete(queue + suffix)

    delete_queues()
    broker = build_broker(
        broker_url(servers),
        consumers=[],
        retries=RetryPolicy(),
    )
    yield broker
    broker.close()
    delete_queues()


# -- helpers ----------------------------------------------------------------------


def a_message(queue: str, number: int) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue, actor_name="count", args=(number,), kwargs={}, options={}
    )


def drain(channel, queue: str) -> list[dramatiq.Message]:
    """Every message in ``queue``, in queue order (taken off it)."""
    messages = []
    while True:
        _, _, body = channel.basic_get(queue, auto_ack=True)
        if body is None:
            return messages
        messages.append(dramatiq.Message.decode(body))


def depth(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def ids(messages: list[dramatiq.Message]) -> set[str]:
    return {message.message_id for message in messages}


# -- the pipeline -----------------------------------------------------------------


def test_a_confirmed_batch_is_in_the_queue_in_order_and_the_pipeline_is_reused(
    make_broker, make_queue, channel
) -> None:
    # Given a broker and 200 messages for one queue
    broker = make_broker()
    queue = make_queue()
    batch = [a_message(queue, number) for number in range(200)]

    # When they are published with pipelined confirms
    broker.publish_confirmed(batch)

    # Then the call returned once all were confirmed: all are in the queue
    assert depth(channel, queue) == 200
    pipeline = broker.state.pipeline

    # When a second batch follows on the same thread
    broker.publish_confirmed([a_message(queue, number) for number in range(200, 250)])

    # Then it went over the same confirm-mode channel
    assert broker.state.pipeline is pipeline
    # and the queue holds both batches in publish order
    assert [message.args[0] for message in drain(channel, queue)] == list(range(250))


def test_a_message_nobody_routes_is_refused_and_the_others_are_confirmed(
    servers, make_queue, channel
) -> None:
    # Given a pipeline on its own connection, a declared queue and a queue nobody declared
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(servers)))
    try:
        pipeline = ConfirmPipeline(connection, timeout=5.0)
        routed, unrouted = make_queue(), make_queue()
        channel.queue_declare(routed, durable=True)
        first, lost, last = a_message(routed, 1), a_message(unrouted, 2), a_message(routed, 3)
        confirmed: set[str] = set()

        # When a batch with a message for the missing queue is published
        with pytest.raises(PipelineError, match="refused 1 message"):
            pipeline.publish([first, lost, last], confirmed)

        # Then the broker's return counts as a refusal; the others are confirmed
        assert confirmed == ids([first, last])
        assert [message.args[0] for message in drain(channel, routed)] == [1, 3]
    finally:
        connection.close()


def test_messages_the_broker_nacks_are_refused_and_the_others_are_confirmed(
    servers, make_queue, channel
) -> None:
    # Given a pipeline, and a queue that takes one message and rejects further publishes
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(servers)))
    try:
        pipeline = ConfirmPipeline(connection, timeout=5.0)
        queue = make_queue()
        channel.queue_declare(
            queue, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
        )
        batch = [a_message(queue, number) for number in range(3)]
        confirmed: set[str] = set()

        # When three messages are published to it
        with pytest.raises(PipelineError, match="refused 2 message"):
            pipeline.publish(batch, confirmed)

        # Then the two the broker nacked are refused, and only the first is confirmed
        assert confirmed == ids(batch[:1])

        # When the pipeline publishes again once there is room
        drain(channel, queue)
        pipeline.publish(batch[1:2], confirmed)

        # Then it confirms on the same channel, delivery tags still in step
        assert confirmed == ids(batch[:2])
        assert depth(channel, queue) == 1
    finally:
        connection.close()


def test_publish_confirmed_reports_which_messages_were_confirmed_when_a_queue_vanished(
    make_broker, make_queue, channel
) -> None:
    # Given a broker that declared two queues, one of which is then deleted
    broker = make_broker()
    kept, vanished = make_queue(), make_queue()
    broker.publish_confirmed([a_message(kept, 0), a_message(vanished, 0)])
    channel.queue_delete(vanished)
    batch = [a_message(kept, 1), a_message(vanished, 1), a_message(kept, 2)]

    # When a batch with a message for the deleted queue is published
    with pytest.raises(PublishIncomplete) as refused:
        broker.publish_confirmed(batch)

    # Then the error names the confirmed messages, without the returned one
    assert refused.value.confirmed == ids([batch[0], batch[2]])
    assert isinstance(refused.value.cause, PipelineError)
    assert [message.args[0] for message in drain(channel, kept)] == [0, 1, 2]


def test_the_next_batch_redeclares_a_queue_that_vanished(make_broker, make_queue, channel) -> None:
    # Given a batch refused because its queue was deleted after the broker declared it
    broker = make_broker()
    queue = make_queue()
    broker.publish_confirmed([a_message(queue, 0)])
    channel.queue_delete(queue)
    with pytest.raises(PublishIncomplete):
        broker.publish_confirmed([a_message(queue, 1)])

    # When the relay tries again
    broker.publish_confirmed([a_message(queue, 1)])

    # Then the queue was declared again and holds the message
    assert depth(channel, queue) == 1


def test_a_refused_batch_leaves_no_channel_open(make_broker, make_queue, channel) -> None:
    # Given a broker whose pipeline is open, and a queue that then vanishes
    broker = make_broker()
    kept, vanished = make_queue(), make_queue()
    broker.publish_confirmed([a_message(kept, 0), a_message(vanished, 0)])
    channels = len(broker.connection._impl._channels)

    # When a batch is refused (returned), then the next one goes through
    channel.queue_delete(vanished)
    with pytest.raises(PublishIncomplete):
        broker.publish_confirmed([a_message(vanished, 1)])
    broker.publish_confirmed([a_message(kept, 1), a_message(vanished, 2)])

    # Then the connection has as many channels open as before
    assert len(broker.connection._impl._channels) == channels


def test_a_batch_whose_confirms_never_come_is_cut_after_the_publish_timeout(
    servers, make_broker, make_queue, proxy, channel
) -> None:
    # Given a broker behind a link that then silently drops everything
    broker = make_broker(
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/{quote(servers, safe='')}",
        publish_timeout=1.0,
    )
    queue = make_queue()
    broker.publish_confirmed([a_message(queue, 0)])
    proxy.set_mode("blackhole", reset=False)

    # When a batch is published, then the wait for its confirms is cut after the timeout
    with pytest.raises(PublishIncomplete) as cut:
        broker.publish_confirmed([a_message(queue, 1), a_message(queue, 2)])
    assert cut.value.confirmed == set()
    assert isinstance(cut.value.cause, PipelineTimeout | pika.exceptions.AMQPConnectionError)

    # When the link heals, then the next batch goes through on a new connection
    proxy.set_mode("pass")
    broker.publish_confirmed([a_message(queue, 3)])
    assert [message.args[0] for message in drain(channel, queue)] == [0, 3]


def test_a_pipeline_gives_up_on_confirms_that_never_come_after_its_timeout(
    servers, make_queue, proxy, channel
) -> None:
    # Given a pipeline (no watchdog) behind a link that then silently drops everything
    connection = pika.BlockingConnection(
        pika.URLParameters(
            f"amqp://guest:guest@127.0.0.1:{proxy.port}/{quote(servers, safe='')}?heartbeat=0"
        )
    )
    pipeline = ConfirmPipeline(connection, timeout=0.5)
    queue = make_queue()
    channel.queue_declare(queue, durable=True)
    proxy.set_mode("blackhole", reset=False)
    outcome: list[BaseException] = []

    def publish() -> None:
        try:
            pipeline.publish([a_message(queue, 1)], set())
        except BaseException as exc:
            outcome.append(exc)

    # When a batch is published
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    publisher.join(timeout=3.0)
    gave_up = not publisher.is_alive()
    # end a wait still going on as the broker's watchdog does: shut the socket down
    connection._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    publisher.join(timeout=5.0)
    assert not publisher.is_alive()
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection.close()

    # Then the pipeline gave up by itself, well within six times its timeout
    assert gave_up
    assert isinstance(outcome[0], PipelineError)


# -- the relay ----------------------------------------------------------------------


def record_events(*events: tuple[str, dict]) -> list[uuid.UUID]:
    with unit_of_work(outbox_database):
        return [
            outbox.record(Outbox, event_type, str(payload["order_id"]), payload)
            for event_type, payload in events
        ]


def unpublished() -> list[int]:
    query = Outbox.select(Outbox.seq).where(Outbox.published_at.is_null()).order_by(Outbox.seq)
    return [row.seq for row in query]


def test_the_relay_publishes_its_outbox_with_pipelined_confirms_and_marks_the_rows(
    outbox_db, relay_broker, channel
) -> None:
    # Given five events in a PostgreSQL outbox, of a step without a batch form
    event_ids = record_events(
        *[("OrderCancelled", {"order_id": str(uuid.uuid4()), "n": n}) for n in range(5)]
    )
    relay = Relay("pipeline-relay", Outbox, publish_batch=batch_publisher(relay_broker))

    # When the relay runs once
    published = relay.run_once()

    # Then it published all five, in order, with ids derived from the events
    assert published == 5
    messages = drain(channel, "invoices")
    assert [message.kwargs["n"] for message in messages] == list(range(5))
    assert [message.message_id for message in messages] == [
        str(uuid.uuid5(event_id, "void_invoice")) for event_id in event_ids
    ]
    assert [message.kwargs["dedupe_key"] for message in messages] == [str(e) for e in event_ids]
    # and marked every row, so the next pass finds nothing
    assert unpublished() == []
    assert relay.run_once() == 0


def test_the_relay_sends_the_events_of_a_batch_step_as_one_confirmed_message(
    outbox_db, relay_broker, channel
) -> None:
    # Given five OrderPlaced events in a PostgreSQL outbox
    event_ids = record_events(
        *[("OrderPlaced", {"order_id": str(uuid.uuid4()), "n": n}) for n in range(5)]
    )
    relay = Relay("pipeline-relay", Outbox, publish_batch=batch_publisher(relay_broker))

    # When the relay runs once
    published = relay.run_once()

    # Then one issue_invoices message carries all five, in order, each with its dedupe key
    assert published == 5
    (message,) = drain(channel, "invoices")
    assert message.actor_name == "issue_invoices"
    events = message.kwargs["events"]
    assert [event["n"] for event in events] == list(range(5))
    assert [event["dedupe_key"] for event in events] == [str(e) for e in event_ids]
    # and the rows are marked
    assert unpublished() == []


def test_the_relay_marks_only_the_rows_before_a_refused_message(
    outbox_db, relay_broker, channel
) -> None:
    # Given events for two queues, one of which vanished after the broker declared it
    relay_broker.declare_queue("invoices", ensure=True)
    relay_broker.declare_queue("orders", ensure=True)
    channel.queue_delete("orders")
    record_events(
        ("OrderCancelled", {"order_id": str(uuid.uuid4()), "n": 0}),
        ("InvoiceRejected", {"order_id": str(uuid.uuid4()), "reason": "r"}),
        ("OrderCancelled", {"order_id": str(uuid.uuid4()), "n": 2}),
    )
    first, stuck, after = (row.seq for row in Outbox.select().order_by(Outbox.seq))
    relay = Relay("pipeline-relay", Outbox, publish_batch=batch_publisher(relay_broker))

    # When the relay runs once, then the refusal surfaces
    with pytest.raises(PipelineError):
        relay.run_once()

    # Then only the row before the refused one is marked; the refused row counts an attempt
    assert unpublished() == [stuck, after]
    assert Outbox.get_by_id(first).published_at is not None
    assert Outbox.get_by_id(stuck).publish_attempts == 1
    # and the confirmed message of the row after it waits to be published again (a
    # duplicate the consumer's dedupe absorbs), never lost
    assert [message.kwargs["n"] for message in drain(channel, "invoices")] == [0, 2]
