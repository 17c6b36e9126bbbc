"""The frame of a saga step: one unit of work that first claims the message's dedupe key.

A step (:func:`step`) or a batch of one step's messages (:func:`batch`) runs in one
transaction of the consumer's database that records the dedupe keys before anything
else, so a message already applied has no second effect: its outcome is
``duplicate``. The step itself is left to lock, decide and apply.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ParamSpec

from ops.shared import dedupe
from ops.shared.database import unit_of_work
from ops.shared.dedupe import ProcessedMessageRecord

DUPLICATE = "duplicate"
P = ParamSpec("P")
Around = Callable[[int], AbstractContextManager[object]]


def step(
    model: type[ProcessedMessageRecord], consumer: str
) -> Callable[[Callable[P, str]], Callable[P, str]]:
    """Make ``f(..., *, dedupe_key)`` a saga step of ``consumer``: it runs in one unit of
    work on ``model``'s database that claims ``dedupe_key`` first, and a message already
    claimed returns ``duplicate`` without running it."""

    def frame(apply: Callable[P, str]) -> Callable[P, str]:
        @functools.wraps(apply)
        def run(*args: P.args, **kwargs: P.kwargs) -> str:
            with unit_of_work(model._meta.database):
                if not dedupe.claim(model, consumer, str(kwargs["dedupe_key"])):
                    return DUPLICATE
                return apply(*args, **kwargs)

        return run

    return frame


@dataclass
class Batch:
    """A batch's claimed messages: ``fresh``, the indexes of those claimed now (in order);
    ``outcomes``, one per message (``duplicate`` until the step sets it); ``around(i)``,
    what wraps the ``i``-th message's work (its trace span)."""

    fresh: list[int]
    outcomes: list[str]
    around: Around


@contextlib.contextmanager
def batch(
    model: type[ProcessedMessageRecord],
    consumer: str,
    dedupe_keys: Sequence[str],
    around: Around | None = None,
) -> Iterator[Batch]:
    """One unit of work on ``model``'s database that claims every key of ``dedupe_keys``
    for ``consumer`` in one statement; a key claimed before, or seen earlier in the same
    batch, is a duplicate."""
    with unit_of_work(model._meta.database):
        claimed = dedupe.claim_all(model, consumer, dedupe_keys)
        fresh = []
        for index, key in enumerate(dedupe_keys):
            if key in claimed:
                claimed.discard(key)  # a second copy in the batch is a duplicate
                fresh.append(index)
        yield Batch(fresh, [DUPLICATE] * len(dedupe_keys), around or _nothing)


def _nothing(index: int) -> AbstractContextManager[object]:
    return contextlib.nullcontext()
