"""The frame of a saga step: one unit of work that claims the message's dedupe key first,
so a message already applied has no second effect (its outcome is ``duplicate``). The
step itself only locks, decides and applies."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ParamSpec

from ops.shared.persistence import dedupe
from ops.shared.persistence.database import unit_of_work
from ops.shared.persistence.dedupe import ProcessedMessageRecord

P = ParamSpec("P")
Around = Callable[[int], AbstractContextManager[object]]


def step(
    model: type[ProcessedMessageRecord], consumer: str
) -> Callable[[Callable[P, str]], Callable[P, str]]:
    """Make ``f(..., *, dedupe_key)`` a step of ``consumer``: it runs in one unit of work on
    ``model``'s database after claiming ``dedupe_key``, or returns ``duplicate``."""

    def frame(apply: Callable[P, str]) -> Callable[P, str]:
        @functools.wraps(apply)
        def run(*args: P.args, **kwargs: P.kwargs) -> str:
            with unit_of_work(model._meta.database):
                if not dedupe.claim(model, consumer, str(kwargs["dedupe_key"])):
                    return "duplicate"
                return apply(*args, **kwargs)

        return run

    return frame


@dataclass
class Batch:
    """``fresh``: the indexes of the messages claimed now, in order; ``outcomes``: one per
    message, ``duplicate`` until set; ``around(i)`` wraps the ``i``-th one's work."""

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
    """One unit of work on ``model``'s database that claims every key for ``consumer`` in
    one statement; a key claimed before, or earlier in the batch, is a duplicate."""
    with unit_of_work(model._meta.database):
        claimed = dedupe.claim_all(model, consumer, dedupe_keys)
        fresh = []
        for index, key in enumerate(dedupe_keys):
            if key in claimed:
                claimed.discard(key)  # a second copy in the batch is a duplicate
                fresh.append(index)
        nothing: Around = lambda _: contextlib.nullcontext()  # noqa: E731
        yield Batch(fresh, ["duplicate"] * len(dedupe_keys), around or nothing)
