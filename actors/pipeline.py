"""Pipelined publisher confirms on a blocking pika connection.

pika's ``BlockingChannel`` in confirm mode waits for the broker's ack after
every ``basic_publish``: one network round trip per message, which caps a
relay at about a thousand messages a second on one thread and costs a
context switch each. :class:`ConfirmPipeline` keeps a channel of its own in
confirm mode, publishes a whole batch, then waits once until every delivery
tag is acked (RabbitMQ acks several at once with ``multiple``). The guarantee
is the same as one-by-one confirms: a message counts as published only once
the broker confirmed it, and a message it returned (no queue to route to,
``mandatory``) or nacked does not count.

This uses pika's asynchronous channel under the blocking one (``_impl``) and
the blocking connection's wait loop (``_flush_output``), both unchanged since
pika 1.0; ``tests/integration/test_pipeline_rabbitmq.py``
exercises it on a real broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import dramatiq
import pika
import pika.spec


class PipelineError(RuntimeError):
    """The broker refused a message (nack or return), or the confirms did not arrive."""


class PipelineTimeout(PipelineError):
    """The confirms did not arrive in time: the connection is not to be trusted."""


class ConfirmPipeline:
    """A confirm-mode channel of ``connection`` that publishes batches and waits once."""

    def __init__(self, connection: pika.BlockingConnection, timeout: float) -> None:
        self.connection = connection
        self.timeout = timeout
        self._channel = connection.channel()  # kept: closing it would close the impl
        self._impl = self._channel._impl
        self._next_tag = 1
        self._pending: dict[int, str] = {}  # delivery tag -> message id
        self._refused: list[str] = []
        self._confirmed: set[str] = set()
        self._ready = False
        self._impl.add_on_return_callback(self._on_return)
        self._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select)
        self._wait(lambda: self._ready, "Confirm.Select")

    def publish(self, messages: Sequence[dramatiq.Message], confirmed: set[str]) -> None:
        """Publish ``messages`` in order and wait for every confirm; adds confirmed ids to
        ``confirmed`` as they arrive. Raises :class:`PipelineError` if one was refused."""
        self._refused.clear()
        self._confirmed = confirmed
        for message in messages:
            self._impl.basic_publish(
                exchange="",
                routing_key=message.queue_name,
                body=message.encode(),
                properties=pika.BasicProperties(
                    delivery_mode=2,
                    priority=message.options.get("broker_priority"),
                    message_id=message.message_id,
                ),
                mandatory=True,
            )
            self._pending[self._next_tag] = message.message_id
            self._next_tag += 1
        self._wait(lambda: not self._pending, f"confirms of {len(messages)} messages")
        if self._refused:
            confirmed.difference_update(self._refused)
            raise PipelineError(f"the broker refused {len(self._refused)} message(s)")

    def close(self) -> None:
        """Close the pipeline's channel (after a refusal; the connection stays)."""
        with contextlib.suppress(Exception):  # it may already be closed
            self._channel.close()

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        """Run the connection's I/O until ``done()`` or ``timeout`` seconds pass. The timer
        is the I/O loop's own, which pika runs inside this wait (the broker's publish
        watchdog also cuts the socket, see actors.rabbitmq)."""
        expired: list[bool] = []
        ioloop = self.connection._impl.ioloop
        timer = ioloop.call_later(self.timeout, lambda: expired.append(True))
        try:
            # pika's own wait loop, as BlockingChannel uses it for one confirm.
            self.connection._flush_output(lambda: done() or bool(expired))
        finally:
            ioloop.remove_timeout(timer)
        if not done():
            raise PipelineTimeout(f"no {what} within {self.timeout:g}s")

    def _on_select(self, frame: object) -> None:
        self._ready = True

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tags = (
            [tag for tag in self._pending if tag <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        acked = isinstance(method, pika.spec.Basic.Ack)
        for tag in tags:
            message_id = self._pending.pop(tag, None)
            if message_id is None:
                continue
            if acked:
                self._confirmed.add(message_id)
            else:
                self._refused.append(message_id)

    def _on_return(
        self,
        channel: object,
        method: object,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        # A returned message is still acked afterwards: remember it as refused.
        if properties.message_id:
            self._refused.append(properties.message_id)
