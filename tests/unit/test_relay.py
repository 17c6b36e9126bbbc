"""The outbox relay: publish, then mark; never mark what the broker did not take."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ops.shared.persistence import outbox
from ops.shared.persistence.relay import BatchPublisher, Chore, PublishIncomplete, Relay
from orders.models import OutboxEvent

ORDER_PLACED = {"order_id": "o", "customer_id": "c", "total": "1.00", "currency": "EUR"}


def add_events(count: int) -> None:
    for index in range(count):
        outbox.record(OutboxEvent, "OrderPlaced", f"order-{index}", {"n": index})


def unpublished() -> int:
    return OutboxEvent.select().where(OutboxEvent.published_at.is_null()).count()


def one_by_one(publish: Callable[[OutboxEvent], object]) -> BatchPublisher:
    """A batch publisher that hands ``publish`` each row in order and stops at the first
    failure, as a broker publisher does."""

    def publish_batch(rows: list) -> list[int]:
        confirmed: list[int] = []
        for row in rows:
            try:
                publish(row)
            except Exception as exc:
                raise PublishIncomplete(confirmed, exc) from exc
            confirmed.append(row.seq)
        return confirmed

    return publish_batch


def test_the_relay_publishes_in_order_and_marks_what_it_published(databases) -> None:
    add_events(3)
    sent = []
    relay = Relay(
        "test", OutboxEvent, publish_batch=one_by_one(lambda row: sent.append(row.aggregate_id))
    )
    count, age = outbox.backlog(OutboxEvent)
    assert count == 3
    assert age is not None
    assert age >= 0
    assert relay.run_once() == 3
    assert outbox.backlog(OutboxEvent) == (0, None)
    assert sent == ["order-0", "order-1", "order-2"]
    assert unpublished() == 0
    assert relay.run_once() == 0


def test_a_failed_publish_keeps_that_row_and_the_rest_for_the_next_pass(databases) -> None:
    add_events(3)
    sent = []

    def publish(row: OutboxEvent) -> None:
        if row.aggregate_id == "order-1" and not sent.count("order-1-failed"):
            sent.append("order-1-failed")
            raise ConnectionError("broker unreachable")
        sent.append(row.aggregate_id)

    relay = Relay("test", OutboxEvent, publish_batch=one_by_one(publish))
    with pytest.raises(ConnectionError):
        relay.run_once()
    assert unpublished() == 2
    assert OutboxEvent.get(OutboxEvent.aggregate_id == "order-1").publish_attempts == 1
    assert relay.run_once() == 2
    assert sent == ["order-0", "order-1-failed", "order-1", "order-2"]


def test_the_relay_loop_survives_failures_and_stops_when_asked(databases) -> None:
    add_events(1)
    stop = threading.Event()
    calls = []

    def publish(row: OutboxEvent) -> None:
        calls.append(row.seq)
        if len(calls) < 3:
            raise ConnectionError("broker unreachable")
        stop.set()

    chore_runs = []
    relay = Relay(
        "test",
        OutboxEvent,
        publish_batch=one_by_one(publish),
        poll_interval=0.01,
        chores=[Chore("count", 0.0, lambda: chore_runs.append(1))],
    )
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(calls) == 3
    assert unpublished() == 0
    assert chore_runs


def test_a_slow_chore_does_not_hold_up_publishing_and_a_failing_one_is_retried(
    databases,
) -> None:
    # Given a relay whose gauge chore hangs until released, and another chore that fails
    # its first run
    stop, hanging, release = threading.Event(), threading.Event(), threading.Event()
    sent: list[str] = []
    flaky_runs: list[int] = []

    def flaky() -> None:
        flaky_runs.append(1)
        if len(flaky_runs) == 1:
            raise RuntimeError("database busy")

    relay = Relay(
        "test",
        OutboxEvent,
        publish_batch=one_by_one(lambda row: sent.append(row.aggregate_id)),
        poll_interval=0.01,
        chores=[
            Chore("gauges", 0.0, lambda: hanging.set() or release.wait(10)),
            Chore("flaky", 0.0, flaky),
        ],
    )
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        # When events are recorded while the gauge chore hangs
        assert hanging.wait(10)
        add_events(2)
        deadline = time.monotonic() + 10
        while len(sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Then they are published all the same
        assert sent == ["order-0", "order-1"]
        assert not release.is_set()
    finally:
        release.set()
        # And once the gauge chore returns, the failed chore runs again
        deadline = time.monotonic() + 10
        while len(flaky_runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(flaky_runs) >= 2


class FakeRabbitmq:
    """Records which way the relay's publisher sent messages."""

    def __init__(self, confirm_delivery: bool) -> None:
        self.confirm_delivery = confirm_delivery
        self.enqueued: list[str] = []
        self.pipelined: list[str] = []

    def enqueue(self, message):  # type: ignore[no-untyped-def]
        self.enqueued.append(message.actor_name)

    def publish_confirmed(self, messages) -> None:  # type: ignore[no-untyped-def]
        self.pipelined += [message.actor_name for message in messages]

    def emit_before(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass

    def emit_after(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.mark.parametrize("confirms", [True, False])
def test_the_relay_pipelines_only_a_broker_with_confirms_on(databases, confirms: bool) -> None:
    from actors.outbound import batch_publisher

    # Given two events of different steps and a RabbitMQ-like broker with confirms on or off
    outbox.record(OutboxEvent, "OrderPlaced", "order-1", ORDER_PLACED)
    cancelled = {"order_id": "o", "customer_id": "c", "reason": "expired"}
    outbox.record(OutboxEvent, "OrderCancelled", "order-2", cancelled)
    broker = FakeRabbitmq(confirm_delivery=confirms)

    # When the relay publishes them
    relay = Relay("test", OutboxEvent, publish_batch=batch_publisher(broker))  # type: ignore[arg-type]

    # Then both go out, pipelined with confirms, or one by one as configured
    assert relay.run_once() == 2
    sent = ["issue_invoice", "void_invoice"]
    assert (broker.pipelined if confirms else broker.enqueued) == sent
    assert not (broker.enqueued if confirms else broker.pipelined)
