"""``orderflow dlq recover``: record the dead letters a worker could not record.

A worker writes a dead letter's record just before it nacks the message into its
queue's ``.XQ``, retrying that write for about 15 s. If the service's database is
down for longer, the message reaches the ``.XQ`` with no record: the worker logs
it as critical and the audit's I6 counts more messages than records. RabbitMQ
keeps the message for 7 days; this finds it there and does what the worker could
not, with the worker's own handlers: the record, and for ``issue_invoice`` the
``InvoiceFailed`` that ends the saga.

Nothing is taken off the ``.XQ``: :func:`peek` reads each message without
acknowledging it and hands every one back (requeued) before any database work,
so the queue keeps its depth. Running it again records nothing twice: a decodable
message is matched by its message id, an undecodable body by its bytes (each copy
of the same body needs a record of its own, as the worker gives each one).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import Counter
from collections.abc import Sequence

import dramatiq
import pika
from dramatiq.common import xq_name
from dramatiq.errors import DecodeError

from actors.broker import QueueActors, connection_parameters
from actors.poison import UNDECODABLE_ACTOR
from ops.dlq.records import find
from ops.services import described

# The last line is what InvoiceFailed carries to the order as the reason.
RECOVERED_ERROR = (
    "recorded after the fact by `orderflow dlq recover` from {queue}: the worker could not "
    "write this record when it gave up (its log has the error)\n"
    "the step failed for good; the worker could not record why"
)


@dataclasses.dataclass(frozen=True)
class Recovered:
    """A message of the ``.XQ`` that had no record and now has one."""

    message_id: str
    actor_name: str

    def line(self) -> str:
        return f"  {self.message_id}  {self.actor_name}  recorded now"


@dataclasses.dataclass(frozen=True)
class NotRecovered:
    """A message of the ``.XQ`` without a record that could not be recorded, and why."""

    message_id: str
    actor_name: str
    reason: str

    def line(self) -> str:
        return f"  {self.message_id}  {self.actor_name}  not recorded: {self.reason}"


@dataclasses.dataclass(frozen=True)
class QueueReport:
    """What one ``.XQ`` held and what was done about it."""

    queue: str
    messages: int
    already_recorded: int
    outcomes: list[Recovered | NotRecovered]

    @property
    def complete(self) -> bool:
        """Every message of the queue now has a record."""
        return all(isinstance(outcome, Recovered) for outcome in self.outcomes)

    def lines(self) -> list[str]:
        if not self.messages:
            return [f"{self.queue}: empty"]
        recovered = sum(isinstance(outcome, Recovered) for outcome in self.outcomes)
        failed = len(self.outcomes) - recovered
        head = (
            f"{self.queue}: {self.messages} message(s): {self.already_recorded} recorded "
            f"already, {recovered} recorded now"
        )
        if failed:
            head += f", {failed} NOT recorded"
        return [head, *(outcome.line() for outcome in self.outcomes)]


def recover(service: str, bodies: Sequence[bytes], actors: QueueActors) -> QueueReport:
    """Record every body of ``service``'s ``.XQ`` that has no record yet, with the
    handlers of ``actors`` (so exactly as its worker would have). The service's
    database must be initialised."""
    queue = xq_name(service)
    error = RECOVERED_ERROR.format(queue=queue)
    known_bodies = _undecodable_bodies(service)
    already = 0
    outcomes: list[Recovered | NotRecovered] = []
    for body in bodies:
        try:
            message = dramatiq.Message.decode(body)
        except DecodeError:
            if known_bodies[body] > 0:  # each copy of a body has a record of its own
                known_bodies[body] -= 1
                already += 1
            else:
                outcomes.append(_record_undecodable(actors, body, error))
            continue
        if find(message.message_id, [service]) is not None:
            already += 1
        else:
            outcomes.append(_record_message(service, actors, message, error))
    return QueueReport(queue, len(bodies), already, outcomes)


def _record_message(
    service: str, actors: QueueActors, message: dramatiq.Message, error: str
) -> Recovered | NotRecovered:
    handler = actors.DEAD_LETTER_HANDLERS.get(message.actor_name, actors.record_dead_letter)
    # Retries counted the failures before the delivery in the .XQ; add that last one.
    attempts = int(message.options.get("retries", 0)) + 1
    try:
        handler(message, error, attempts)
    except Exception as exc:  # reported per message; the next one still gets its turn
        return NotRecovered(message.message_id, message.actor_name, repr(exc))
    if find(message.message_id, [service]) is None:
        return NotRecovered(message.message_id, message.actor_name, "no record was written")
    return Recovered(message.message_id, message.actor_name)


def _record_undecodable(actors: QueueActors, body: bytes, error: str) -> Recovered | NotRecovered:
    try:
        actors.record_undecodable(body, error)
    except Exception as exc:
        return NotRecovered("(undecodable)", UNDECODABLE_ACTOR, repr(exc))
    return Recovered("(undecodable)", UNDECODABLE_ACTOR)


def peek(broker_url: str, queue: str) -> list[bytes]:
    """The bodies in ``queue``, oldest first, left in the queue (all are requeued before
    this returns); an undeclared queue holds none."""
    connection = pika.BlockingConnection(connection_parameters(broker_url))
    try:
        channel = connection.channel()
        try:
            depth = channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            return []
        bodies: list[bytes] = []
        last_tag = None
        while len(bodies) < depth:
            method, _, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            bodies.append(body)
            last_tag = method.delivery_tag
        if last_tag is not None:
            channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
        channel.close()
        return bodies
    finally:
        connection.close()


def _undecodable_bodies(service: str) -> Counter[bytes]:
    """How many records of ``service`` hold each undecodable body."""
    model = described(service).dead_letters
    bodies: Counter[bytes] = Counter()
    for (stored,) in (
        model.select(model.message).where(model.actor_name == UNDECODABLE_ACTOR).tuples()
    ):
        bodies[base64.b64decode(json.loads(stored)["body_base64"])] += 1
    return bodies
