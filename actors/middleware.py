"""Worker middleware: database connections per thread, and dead-letter records."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import dramatiq
import peewee
from dramatiq.brokers.rabbitmq import q_name
from dramatiq.middleware import Middleware

from actors.poison import CrashLoop, persistently
from ops.shared.persistence.database import CONNECTION_ERRORS, discard_connection, ensure_usable

log = logging.getLogger(__name__)

DeadLetterHandler = Callable[[dramatiq.Message, str, int], None]


class DatabaseConnection(Middleware):
    """Keeps one connection per worker thread to the database of the message's queue.

    A worker connects only the databases of the queues it consumes, and only
    when the first message arrives. A connection the driver marked broken is
    dropped before the next message, and one that raised a connection error is
    discarded at once, so a PostgreSQL restart costs a retry, not a dead thread.
    """

    def __init__(self, databases: Mapping[str, peewee.Database | peewee.DatabaseProxy]) -> None:
        self.databases = dict(databases)

    def _database(self, message: dramatiq.Message) -> peewee.Database | None:
        return self.databases.get(q_name(message.queue_name))

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        """Runs before each message: make sure this thread's connection is usable."""
        database = self._database(message)
        if database is not None:
            ensure_usable(database)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        """Runs after each message: throw away a connection that failed."""
        database = self._database(message)
        if database is not None and isinstance(exception, CONNECTION_ERRORS):
            discard_connection(database)

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: object) -> None:
        """Runs as a worker thread stops: close its connections."""
        for database in self.databases.values():
            discard_connection(database)


class DeadLetters(Middleware):
    """Records a message in its service's database as it is nacked into the ``.XQ``.

    A message is nacked exactly when Dramatiq gives up on it: ``Retries`` ran
    out, the step raised a permanent error, no actor of that name exists, or
    the ``RedeliveryGuard`` found it kept killing its worker. Recording at the
    nack covers all of these in one place; RabbitMQ moves the message itself to
    the queue's ``.XQ``. A record that cannot be written (the database is down)
    is retried for about 15 s, then logged as critical: the audit's I6 then
    shows the ``.XQ`` holding more than the records, and ``orderflow dlq
    recover`` writes the missing records from the ``.XQ`` (``ops.dlq.recover``).
    """

    def __init__(
        self, handlers: Mapping[str, DeadLetterHandler], default: Mapping[str, DeadLetterHandler]
    ) -> None:
        self.handlers = dict(handlers)  # by actor name
        self.default = dict(default)  # by queue name

    def before_nack(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        """Runs before each nack: record the message and why it failed."""
        exception = getattr(message, "_exception", None)
        error = message.options.get("traceback") or repr(exception)
        attempts = self._attempts(broker, message, exception)
        handler = self.handlers.get(message.actor_name) or self.default.get(
            q_name(message.queue_name)
        )
        log.error(
            "dead-lettered %s %s (dedupe_key=%s, attempts=%s): %r",
            message.actor_name,
            message.message_id,
            message.kwargs.get("dedupe_key"),
            attempts,
            exception,
        )
        if handler is not None:
            persistently(
                lambda: handler(message, error, attempts),
                f"record the dead letter {message.message_id} (RabbitMQ keeps it in the .XQ; "
                "`orderflow dlq recover` records it once the database is back)",
            )

    @staticmethod
    def _attempts(
        broker: dramatiq.Broker, message: dramatiq.Message, exception: BaseException | None
    ) -> int:
        """How many times the step ran: Retries counts failures in ``retries``; a permanent
        error fails without counting; a crash loop counts its redeliveries."""
        if isinstance(exception, CrashLoop):
            return exception.redeliveries
        attempts = int(message.options.get("retries", 0))
        if broker.actors.get(message.actor_name) is not None:
            throws = broker.get_actor(message.actor_name).options.get("throws")
            if throws and isinstance(exception, throws):
                attempts += 1
        return max(attempts, 1)


def dead_letter_fields(message: dramatiq.Message, error: str, attempts: int) -> dict[str, object]:
    """The columns of a dead-letter record for ``message``."""
    return {
        "message_id": message.message_id,
        "queue_name": q_name(message.queue_name),
        "actor_name": message.actor_name,
        "dedupe_key": message.kwargs.get("dedupe_key"),
        "order_id": message.kwargs.get("order_id"),
        "message": json.dumps(message.asdict(), default=str),
        "error": error,
        "attempts": attempts,
    }
