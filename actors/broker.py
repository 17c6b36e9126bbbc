"""Builds the Dramatiq broker every orderflow process uses, with our middleware.

RabbitMQ gets publisher confirms (Dramatiq leaves them off by default), so a
publish returns only once the broker has the message, and a bound on the wait for
that confirm (``actors.rabbitmq``). Without a URL the stub
broker runs everything in-process (standalone mode and unit tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import pika
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit

from actors.middleware import DatabaseConnection, DeadLetterHandler, DeadLetters
from actors.poison import RedeliveryGuard
from actors.tracing import Tracing
from ops.shared.persistence import redeliveries
from ops.shared.persistence.service import ServiceDescription
from ops.shared.values.nodes import broker_nodes

# pika connection defaults unless the URL says otherwise: notice a dead peer within
# seconds, and never block forever on a broker that is out of resources.
CONNECTION_DEFAULTS = {
    "heartbeat": "15",
    "blocked_connection_timeout": "30",
    "connection_attempts": "3",
    "retry_delay": "1",
    "socket_timeout": "5",
}
ONE_TRY = {"connection_attempts": "1"}  # per node, when BROKER_URL names several


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``min_backoff_ms`` doubling up to ``max_backoff_ms``."""

    max_retries: int = 7
    min_backoff_ms: int = 500
    max_backoff_ms: int = 300_000
    # redeliveries after a worker died holding the message, before it is dead-lettered
    max_redeliveries: int = 3


class QueueActors(Protocol):
    """A queue's actor module (``actors.ordering``): its actors and what records its dead
    letters (by actor, else the default) and the bodies on it that are not messages."""

    DEAD_LETTER_HANDLERS: Mapping[str, DeadLetterHandler]

    def record_dead_letter(self, message: dramatiq.Message, error: str, attempts: int) -> None: ...

    def record_undecodable(self, body: bytes, error: str, redelivered: bool = False) -> None: ...

    def declare(self, broker: dramatiq.Broker) -> dict[str, dramatiq.Actor]: ...


@dataclass(frozen=True)
class Consumer:
    """A queue workers consume: its service (named as the queue) and its actors."""

    service: ServiceDescription
    actors: QueueActors


def with_connection_defaults(url: str, defaults: Mapping[str, str] = CONNECTION_DEFAULTS) -> str:
    """Add our pika connection defaults to an ``amqp://`` URL unless it sets them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in defaults.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def connection_urls(broker_url: str) -> list[str]:
    """Each node's URL in ``BROKER_URL`` (``ops.shared.values.nodes``), with our connection
    defaults. With several nodes a connection tries each once, in order (pika goes down
    the list), rather than three times a node that is down before the next."""
    nodes = broker_nodes(broker_url)
    defaults = CONNECTION_DEFAULTS if len(nodes) == 1 else {**CONNECTION_DEFAULTS, **ONE_TRY}
    return [with_connection_defaults(node, defaults) for node in nodes]


def connection_parameters(broker_url: str) -> list[pika.URLParameters]:
    """What ``pika.BlockingConnection`` takes to reach the first node that answers."""
    return [pika.URLParameters(url) for url in connection_urls(broker_url)]


def build_broker(
    broker_url: str | None,
    *,
    consumers: Sequence[Consumer],
    retries: RetryPolicy,
    queue_type: str = "classic",
) -> dramatiq.Broker:
    """A broker with time limits, dead-letter records, retries and per-thread connections,
    and the actors of ``consumers`` declared. Only their queues ever open their service's
    database, which records their dead letters, redeliveries (the crash-loop guard) and
    bodies that are not messages. ``queue_type`` is ``classic`` or ``quorum`` (RabbitMQ)."""
    queues = {consumer.service.name: consumer for consumer in consumers}
    handlers = {a: h for c in consumers for a, h in c.actors.DEAD_LETTER_HANDLERS.items()}
    counters = {q: partial(redeliveries.count, c.service.redeliveries) for q, c in queues.items()}
    middleware = [
        Tracing(),  # first: its span is current in every other hook and in the actor
        CurrentMessage(),  # batch actors read their message's retries and redelivery
        ShutdownNotifications(),
        TimeLimit(),
        DeadLetters(handlers, {q: c.actors.record_dead_letter for q, c in queues.items()}),
        Retries(
            max_retries=retries.max_retries,
            min_backoff=retries.min_backoff_ms,
            max_backoff=retries.max_backoff_ms,
        ),
        DatabaseConnection({q: c.service.database for q, c in queues.items()}),
        # after DatabaseConnection: counts with the thread's connection
        RedeliveryGuard(counters, retries.max_redeliveries),
    ]
    if broker_url is None:
        broker: dramatiq.Broker = StubBroker(middleware=middleware)
    else:
        from actors.rabbitmq import OrderflowRabbitmqBroker

        broker = OrderflowRabbitmqBroker(
            url=connection_urls(broker_url),
            confirm_delivery=True,
            middleware=middleware,
            undecodable={q: c.actors.record_undecodable for q, c in queues.items()},
            queue_type=queue_type,
        )
    for consumer in consumers:
        consumer.actors.declare(broker)
    return broker


def keep_alive(broker: dramatiq.Broker) -> Callable[[], None]:
    """A function an idle publisher calls now and then so pika answers heartbeats.

    pika's blocking connection only services heartbeats inside pika calls; a relay
    that waits on PostgreSQL for minutes would otherwise have its connection closed
    by RabbitMQ and pay a reconnect on the next publish.
    """
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    if not isinstance(broker, RabbitmqBroker):
        return lambda: None

    def tick() -> None:
        connection = getattr(broker.state, "connection", None)
        if connection is None:
            return
        try:
            connection.process_data_events(time_limit=0)
        except Exception:
            with contextlib.suppress(Exception):
                del broker.connection

    return tick
