"""Replaying dead letters: the same step again, as a new message on its original queue.

The copy keeps the actor, the arguments (the ``dedupe_key`` among them: the
consumer's dedupe table absorbs an effect that already happened, so a replay
never doubles one) and the sender's options (the trace context among them),
drops what ``Retries`` and the delay queue wrote into the options, and gets a
new message id (so a replay that dead-letters again gets a record of its own)
with ``replay_of`` naming the record. A record is marked replayed only after
``enqueue`` returned, which for RabbitMQ with publisher confirms means the
broker has the message; the record's row is locked meanwhile, so two operators
never replay it at once.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator

import dramatiq

from actors.poison import UNDECODABLE_ACTOR
from ops.dlq.listing import age, seconds_since
from ops.dlq.records import Entry, find, newest_first
from ops.shared.persistence.database import is_postgres, unit_of_work
from ops.shared.persistence.dead_letters import DeadLetterRecord
from ops.shared.values.clock import utcnow

Enqueue = Callable[[dramatiq.Message], object]
# Options Dramatiq's Retries and delay queue write, and the mark of an earlier replay.
BOOKKEEPING_OPTIONS = frozenset({"retries", "traceback", "requeue_timestamp", "eta", "replay_of"})


class NotReplayable(Exception):
    """The record holds no message that could be sent again."""


@dataclasses.dataclass(frozen=True)
class Replayed:
    """A dead letter sent again as ``new_message_id``."""

    message_id: str
    new_message_id: str
    actor_name: str
    queue_name: str

    def line(self) -> str:
        return f"{self.message_id} -> {self.new_message_id}  {self.actor_name} on {self.queue_name}"


@dataclasses.dataclass(frozen=True)
class NotReplayed:
    """A requested dead letter that was not sent, and why."""

    message_id: str
    reason: str

    def line(self) -> str:
        return f"{self.message_id}: not replayed: {self.reason}"


Outcome = Replayed | NotReplayed


def replay_copy(record: DeadLetterRecord) -> dramatiq.Message:
    """The message to send for ``record``: a new id, ``replay_of``, no retry bookkeeping.

    Raises :class:`NotReplayable` for an undecodable body or a stored message
    that is not a Dramatiq message."""
    if record.actor_name == UNDECODABLE_ACTOR:
        raise NotReplayable(
            "undecodable: its body was not a Dramatiq message when it arrived, so there is "
            "nothing to replay (the raw body is kept base64-encoded in the record)"
        )
    try:
        original = dramatiq.Message(**json.loads(record.message))
    except (ValueError, TypeError) as exc:
        raise NotReplayable(
            f"undecodable: the stored message is not a Dramatiq message ({exc})"
        ) from exc
    options = {k: v for k, v in original.options.items() if k not in BOOKKEEPING_OPTIONS}
    return dramatiq.Message(
        queue_name=record.queue_name,
        actor_name=original.actor_name,
        args=tuple(original.args),
        kwargs=dict(original.kwargs),
        options={**options, "replay_of": record.message_id},
        message_id=str(uuid.uuid4()),
        message_timestamp=int(time.time() * 1000),
    )


def replay(
    message_ids: Iterable[str],
    *,
    enqueue: Enqueue,
    by: str,
    services: Iterable[str],
    again: bool = False,
) -> Iterator[Outcome]:
    """Replay each named dead letter of ``services`` in turn, yielding what happened.

    Refused: an unknown id, an undecodable record, and one already replayed
    unless ``again``. An ``enqueue`` that raises leaves its record unreplayed."""
    services = list(services)
    for message_id in message_ids:
        entry = find(message_id, services)
        if entry is None:
            yield NotReplayed(
                message_id, f"unknown: no dead letter with this id in {' or '.join(services)}"
            )
            continue
        yield _replay_entry(entry, enqueue, by, again)


def backlog(services: Iterable[str]) -> tuple[list[str], list[Entry]]:
    """The dead letters not yet replayed, oldest first: the ids of those that can be
    replayed, and the undecodable ones (which never can)."""
    entries = list(reversed(newest_first(services)))
    undecodable = [entry for entry in entries if entry.record.actor_name == UNDECODABLE_ACTOR]
    replayable = [
        entry.record.message_id for entry in entries if entry.record.actor_name != UNDECODABLE_ACTOR
    ]
    return replayable, undecodable


def _replay_entry(entry: Entry, enqueue: Enqueue, by: str, again: bool) -> Outcome:
    model = type(entry.record)
    message_id = entry.record.message_id
    sent: dramatiq.Message | None = None
    try:
        with unit_of_work(model._meta.database):
            record = _locked(model, message_id)
            if record.replayed_at is not None and not again:
                ago = age(seconds_since(record.replayed_at, utcnow()))
                return NotReplayed(
                    message_id,
                    f"already replayed {ago} ago by {record.replayed_by} (--again to replay it "
                    "once more)",
                )
            message = replay_copy(record)
            enqueue(message)
            sent = message
            model.update(replayed_at=utcnow(), replayed_by=by).where(
                model.id == record.id
            ).execute()
    except NotReplayable as exc:
        return NotReplayed(message_id, str(exc))
    except Exception as exc:  # reported per record; the next record still gets its turn
        if sent is None:
            return NotReplayed(message_id, f"could not enqueue it: {exc!r}")
        return NotReplayed(
            message_id,
            f"enqueued as {sent.message_id} but not marked replayed ({exc!r}); replaying it "
            "again is safe: the consumer's dedupe absorbs the repeat",
        )
    return Replayed(message_id, sent.message_id, sent.actor_name, sent.queue_name)


def _locked(model: type[DeadLetterRecord], message_id: str) -> DeadLetterRecord:
    query = model.select().where(model.message_id == message_id)
    if is_postgres(model._meta.database):
        query = query.for_update()
    return query.get()
