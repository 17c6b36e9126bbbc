"""Dead letters over HTTP, for operators: what ``orderflow dlq list`` and ``dlq replay``
do, on each service's front (``ops.bootstrap.build_app`` adds the routes; the services
themselves know nothing of them).

``GET /dead-letters`` lists the service's dead letters, newest first (``all=true``
includes the replayed ones). ``POST /dead-letters/{message_id}/replay`` replays one
by the same rules as the command: once (a second time is 409, naming who replayed
it and when), through RabbitMQ with publisher confirms, recorded with the operator
(the token's subject) and the time. Without RabbitMQ (standalone) a replay is 409.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import falcon

from ops.dlq import listing, records, replay
from ops.shared.values.clock import utcnow
from ops.shared.web.auth import require_operator
from ops.shared.web.problems import Problem

MAX_LIMIT = 500
Publisher = Callable[[], replay.Enqueue]


class DeadLetters:
    """``GET /dead-letters?all=&limit=``: this service's dead letters, newest first."""

    def __init__(self, service: str) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(req)
        include = req.get_param_as_bool("all", default=False)
        limit = req.get_param_as_int("limit", default=100, min_value=1, max_value=MAX_LIMIT)
        entries = records.newest_first([self.service], include_replayed=include, limit=limit)
        now = utcnow()
        resp.media = {
            "items": [listing.to_dict(entry, now) for entry in entries],
            "total": records.count([self.service], include_replayed=include),
        }


class DeadLetterReplay:
    """``POST /dead-letters/{message_id}/replay``: send it again, once."""

    def __init__(self, service: str, publisher: Publisher | None) -> None:
        self.service = service
        self.publisher = publisher

    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        operator = require_operator(req)
        if records.find(message_id, [self.service]) is None:
            raise Problem(404, "Not found", f"no dead letter {message_id} in {self.service}")
        if self.publisher is None:
            raise Problem(
                409, "Replay needs RabbitMQ", "dead letters are replayed in distributed mode only"
            )
        (outcome,) = replay.replay(
            [message_id], enqueue=self.publisher(), by=operator.subject, services=[self.service]
        )
        if isinstance(outcome, replay.NotReplayed):  # the command's hint is not for here
            raise Problem(409, "Not replayed", outcome.reason.split(" (--again")[0])
        entry = records.find(message_id, [self.service])
        assert entry is not None
        resp.media = {
            **listing.to_dict(entry, utcnow()),
            "new_message_id": outcome.new_message_id,
        }


def lazy_publisher(broker_url: str, queue_type: str) -> Publisher:
    """A RabbitMQ publisher with confirms, opened at the first replay and kept."""
    from ops.dlq.commands import rabbitmq_publisher

    lock = threading.Lock()
    opened: list[replay.Enqueue] = []

    def publisher() -> replay.Enqueue:
        with lock:
            if not opened:
                opened.append(rabbitmq_publisher(broker_url, queue_type)[0])
            return opened[0]

    return publisher


def add_routes(app: falcon.App, service: str, publisher: Publisher | None) -> None:
    """The dead-letter routes of ``service`` on its front ``app``."""
    app.add_route("/dead-letters", DeadLetters(service))
    app.add_route("/dead-letters/{message_id}/replay", DeadLetterReplay(service, publisher))
