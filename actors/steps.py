"""What every saga step shares: the errors that never retry, and declaring actors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq

from ops.shared.values.errors import DomainError

log = logging.getLogger("actors")

# Business rejections and malformed messages: retrying cannot help, so these fail
# the message at once (and it is dead-lettered). Infrastructure errors retry.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (DomainError, ValueError, TypeError, KeyError)

# A step is a few queries; one that runs this long is stuck, and TimeLimit interrupts it.
TIME_LIMIT_MS = 60_000


def declare(
    broker: dramatiq.Broker, queue_name: str, functions: Iterable[Callable[..., Any]]
) -> dict[str, dramatiq.Actor]:
    """Declare ``functions`` as actors of ``queue_name`` on ``broker``; returns them by name."""
    return {
        function.__name__: dramatiq.actor(
            function,
            broker=broker,
            actor_name=function.__name__,
            queue_name=queue_name,
            throws=PERMANENT_ERRORS,
            time_limit=TIME_LIMIT_MS,
        )
        for function in functions
    }


def outcome(actor: str, order_id: str, dedupe_key: str, result: str) -> None:
    """Log one line per step: which order, which message, what happened."""
    log.info(
        "%s order_id=%s dedupe_key=%s outcome=%s",
        actor,
        order_id,
        dedupe_key,
        result,
        extra={"actor": actor, "order_id": order_id, "dedupe_key": dedupe_key, "outcome": result},
    )
