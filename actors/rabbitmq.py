"""Dramatiq's ``RabbitmqBroker`` with what it lacks: a bound on each publish, pipelined
confirms for a batch, consumers that record undecodable bodies, and quorum queues.

With ``queue_type="quorum"`` every queue it declares (the queue, its ``.DQ`` and its
``.XQ``) is a quorum queue: replicated over the nodes of a RabbitMQ cluster, where
Dramatiq declares classic queues. A queue's type cannot change once declared: a
deployment switches by draining and deleting the classic queues first.

A publish with confirms waits for the broker's ack, and pika's blocking connection
has no timeout of its own: if the network swallows the publish but keeps the
connection alive (a blackhole that ends without a reset, a proxy that drops a
frame), the ack never comes and the caller waits forever. Here a timer aborts a
publish that is not confirmed within ``publish_timeout`` seconds: it shuts the
connection's socket down, the waiting call fails with ``StreamLostError``,
Dramatiq drops the connection, and the caller (the relay, a retry) tries again on
a new one. The event stays unpublished until a confirm arrives, so a timeout can
only cause a duplicate publish, which the consumer's dedupe absorbs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence

import dramatiq
import pika.exceptions
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import q_name, xq_name

from actors.pipeline import ConfirmPipeline, PipelineError, PipelineTimeout
from actors.poison import RecordingConsumer, UndecodableHandler
from ops.shared.persistence.relay import PublishIncomplete

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0  # seconds; a confirm takes about a millisecond on a healthy broker


@dataclasses.dataclass
class _Watch:
    """One thread's publish in progress: the connection it waits on, and until when."""

    deadline: float
    connection: pika.BlockingConnection | None = None


class OrderflowRabbitmqBroker(RabbitmqBroker):
    """See the module docstring. ``undecodable`` maps queue names to the function that
    records a body of that queue which is not a message. One watchdog thread per
    broker checks the publishes in progress once a second."""

    def __init__(
        self,
        *,
        undecodable: Mapping[str, UndecodableHandler],
        publish_timeout: float = PUBLISH_TIMEOUT,
        queue_type: str = "classic",
        **options: object,
    ) -> None:
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"queue_type must be classic or quorum, not {queue_type!r}")
        super().__init__(**options)
        self.queue_type = queue_type
        self.undecodable = dict(undecodable)
        self.publish_timeout = publish_timeout
        self._watches: dict[int, _Watch] = {}
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()

    def _build_queue_arguments(self, queue_name: str) -> dict[str, object]:
        """Dramatiq's arguments of a queue and its ``.DQ``, plus the queue type."""
        arguments = super()._build_queue_arguments(queue_name)
        if self.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        return arguments

    def _declare_xq_queue(self, queue_name: str) -> object:
        """The ``.XQ`` as Dramatiq declares it (dead messages kept 7 days), of our queue type
        (quorum queues keep a message TTL since RabbitMQ 3.10)."""
        if self.queue_type == "classic":
            return super()._declare_xq_queue(queue_name)
        return self.channel.queue_declare(
            queue=xq_name(queue_name),
            durable=True,
            arguments={"x-message-ttl": DEAD_MESSAGE_TTL, "x-queue-type": "quorum"},
        )

    @property
    def consumer_class(self):  # type: ignore[no-untyped-def]
        return functools.partial(RecordingConsumer, handlers=self.undecodable)

    @property
    def connection(self) -> pika.BlockingConnection:
        """The calling thread's connection (Dramatiq's); a publish in progress on this
        thread starts its clock again on a new connection."""
        connection = RabbitmqBroker.connection.fget(self)  # type: ignore[attr-defined]
        watch = self._watches.get(threading.get_ident())
        if watch is not None and watch.connection is not connection:
            watch.connection = connection
            watch.deadline = time.monotonic() + self.publish_timeout
        return connection

    @connection.deleter
    def connection(self) -> None:
        RabbitmqBroker.connection.fdel(self)  # type: ignore[attr-defined]

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        """Publish ``message``; raises (after Dramatiq's own reconnect attempts) rather
        than wait longer than ``publish_timeout`` for any one confirm."""
        self._ensure_watchdog()
        ident = threading.get_ident()
        self._watches[ident] = _Watch(
            time.monotonic() + self.publish_timeout, getattr(self.state, "connection", None)
        )
        try:
            return super().enqueue(message, delay=delay)
        finally:
            self._watches.pop(ident, None)

    def publish_confirmed(self, messages: Sequence[dramatiq.Message]) -> None:
        """Publish ``messages`` in order on this thread's connection and wait for all their
        confirms at once (pipelined: one wait for the batch, not a round trip each).

        The caller runs the ``enqueue`` middleware hooks. Raises :class:`PublishIncomplete`
        with the ids the broker confirmed when the connection fails, a message is nacked or
        returned (no queue), or the confirms take longer than ``publish_timeout``.
        """
        if not messages:
            return
        self._ensure_watchdog()
        ident = threading.get_ident()
        confirmed: set[str] = set()
        try:
            for queue in {message.queue_name for message in messages}:
                self.declare_queue(queue, ensure=True)
            connection = self.connection
            self._watches[ident] = _Watch(time.monotonic() + self.publish_timeout, connection)
            pipeline = self._pipeline(connection)
            pipeline.publish(messages, confirmed)
        except (pika.exceptions.AMQPError, OSError, PipelineError) as exc:
            pipeline = getattr(self.state, "pipeline", None)
            self.state.pipeline = None
            if isinstance(exc, PipelineError) and not isinstance(exc, PipelineTimeout):
                # A queue may have vanished (messages returned): declare again next time,
                # as Dramatiq's enqueue does; and do not leave the channel open.
                self.queues_pending.update(q_name(message.queue_name) for message in messages)
                if pipeline is not None:
                    pipeline.close()
            else:  # the connection is unusable, or silent: cut it, Dramatiq reconnects
                connection = getattr(self.state, "connection", None)
                if isinstance(exc, PipelineTimeout) and connection is not None:
                    self._abort(connection)
                with contextlib.suppress(Exception):
                    del self.connection
            raise PublishIncomplete(confirmed, exc) from exc
        finally:
            self._watches.pop(ident, None)

    def _pipeline(self, connection: pika.BlockingConnection) -> ConfirmPipeline:
        pipeline = getattr(self.state, "pipeline", None)
        if pipeline is None or pipeline.connection is not connection:
            pipeline = self.state.pipeline = ConfirmPipeline(connection, self.publish_timeout)
        return pipeline

    def _ensure_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        with self._watchdog_lock:
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="publish-watchdog", daemon=True
                )
                self._watchdog.start()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            self.abort_overdue(time.monotonic())

    def abort_overdue(self, now: float) -> int:
        """Cut the connection of every publish waiting past its deadline; returns how many."""
        cut = 0
        for watch in list(self._watches.values()):
            if watch.connection is not None and now > watch.deadline:
                connection, watch.connection = watch.connection, None
                self._abort(connection)
                cut += 1
        return cut

    def _abort(self, connection: pika.BlockingConnection) -> None:
        """Cut the connection's socket from this timer thread. pika runs thread-safe
        callbacks only between blocking calls, so nothing else reaches a publish that
        is waiting for its confirm; a shut-down socket makes that wait fail at once
        (``StreamLostError``), and Dramatiq opens a new connection."""
        log.error(
            "a publish waited %gs for its confirm: cutting the connection", self.publish_timeout
        )
        transport = getattr(getattr(connection, "_impl", None), "_transport", None)
        sock = getattr(transport, "_sock", None)
        if sock is None:  # already closed, or a pika without these internals
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
