"""Messages no step can finish: ones that kill their worker, and bodies that do not decode.

Two cases escape Dramatiq's ``Retries``:

- a message that makes its worker *process* die (a crash, not an exception)
  is redelivered by RabbitMQ forever. :class:`RedeliveryGuard` counts each
  redelivery durably before the step starts and fails the message once the
  count passes the limit, so it is nacked into the ``.XQ`` and recorded;
- a body that is not a Dramatiq message is nacked by Dramatiq's consumer
  before any middleware sees it. :class:`RecordingConsumer` records it.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer, q_name
from dramatiq.errors import DecodeError
from dramatiq.middleware import Middleware, SkipMessage

log = logging.getLogger(__name__)

UNDECODABLE_ACTOR = "<undecodable>"
RedeliveryCounter = Callable[[str], int]  # message id -> redeliveries so far, this one included
# raw body, error, redelivered (a redelivered body may have been recorded already: its
# worker died after recording it, before the nack reached RabbitMQ)
UndecodableHandler = Callable[[bytes, str, bool], None]


class CrashLoop(SkipMessage):
    """The message was redelivered more often than the limit: its worker kept dying."""

    def __init__(self, redeliveries: int) -> None:
        super().__init__(
            f"redelivered {redeliveries} times: the worker process died while handling it"
        )
        self.redeliveries = redeliveries


class RedeliveryGuard(Middleware):
    """Fails a redelivered message once its durable redelivery count passes ``limit``.

    Must come after ``DatabaseConnection`` (the count is written with the
    thread's connection). Only redeliveries are counted: a worker killed with
    messages merely prefetched costs each of them one count, and a message is
    failed only after ``limit`` redeliveries that all reached this point.
    """

    def __init__(self, counters: Mapping[str, RedeliveryCounter], limit: int) -> None:
        self.counters = dict(counters)  # by queue name
        self.limit = limit

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        """Runs before each message: count a redelivery, give up past the limit."""
        if not getattr(message, "redelivered", False):
            return
        counter = self.counters.get(q_name(message.queue_name))
        if counter is None:
            return
        redeliveries = counter(message.message_id)
        log.warning(
            "redelivery %s of %s %s (dedupe_key=%s)",
            redeliveries,
            message.actor_name,
            message.message_id,
            message.kwargs.get("dedupe_key"),
        )
        if redeliveries > self.limit:
            message.fail()
            raise CrashLoop(redeliveries)


def undecodable_fields(queue_name: str, body: bytes, error: str) -> dict[str, object]:
    """The columns of a dead-letter record for a body that is not a message."""
    return {
        "message_id": str(uuid.uuid4()),  # every copy in the .XQ gets a record of its own
        "queue_name": queue_name,
        "actor_name": UNDECODABLE_ACTOR,
        "dedupe_key": None,
        "order_id": None,
        "message": json.dumps(
            {"queue_name": queue_name, "body_base64": base64.b64encode(body).decode()}
        ),
        "error": error,
        "attempts": 1,
    }


def persistently(action: Callable[[], object], what: str, tries: int = 5) -> bool:
    """Run ``action``, retrying with backoff (about 15 s in all) while it raises."""
    for attempt in range(tries):
        try:
            action()
            return True
        except Exception:
            if attempt == tries - 1:
                log.critical("could not %s", what, exc_info=True)
                return False
            time.sleep(0.5 * 2**attempt)
    return False  # pragma: no cover


class RecordingConsumer(_RabbitmqConsumer):
    """Dramatiq's RabbitMQ consumer, recording the bodies it nacks as undecodable.

    Each delivery's body is kept aside as it passes (no extra work); when
    Dramatiq's ``__next__`` returns nothing for a delivery, it could not decode the
    body and has nacked it into the ``.XQ``, so the body is recorded then. Only
    that rare path decodes a second time, to say why.
    """

    def __init__(
        self,
        broker: RabbitmqBroker,
        queue_name: str,
        prefetch: int,
        timeout: int,
        *,
        handlers: Mapping[str, UndecodableHandler],
    ) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.handler = handlers.get(q_name(queue_name))
        self._body: bytes | None = None
        self._redelivered = False
        if self.handler is not None:
            self.iterator = self._kept_aside(self.iterator)

    def _kept_aside(self, deliveries):  # type: ignore[no-untyped-def]
        for delivery in deliveries:
            method = delivery[0]
            self._body = delivery[2] if method is not None else None
            self._redelivered = bool(getattr(method, "redelivered", False))
            yield delivery

    def __next__(self):  # type: ignore[no-untyped-def]
        self._body = None
        message = super().__next__()
        if message is None and self._body is not None:
            self._record(self._body, self._redelivered)
        return message

    def _record(self, body: bytes, redelivered: bool = False) -> None:
        try:
            dramatiq.Message.decode(body)
            reason = "Dramatiq's consumer refused it"
        except DecodeError as exc:
            reason = repr(exc)
        error = f"the body is not a Dramatiq message: {reason}"
        log.error("undecodable message on %s: %s", self.queue_name, error)
        persistently(
            lambda: self.handler(body, error, redelivered),
            f"record an undecodable message on {self.queue_name}",
        )
