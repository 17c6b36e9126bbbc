"""The demo run's record: who its customers are, what it placed, paid and cancelled."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from ops.demo.client import Endpoints, Item, Reply
from ops.demo.identity import Tokens


@dataclass
class Placement:
    """One ``POST /orders`` by ``customer``: the request, its answer, and the replay's
    answer if one was sent."""

    customer: str
    request: Item
    reply: Reply
    replay: Reply | None = None

    @property
    def order_id(self) -> str | None:
        """The id of the order created, if the answer was 201 with an order."""
        body = self.reply.body
        return body.get("id") if self.reply.status == 201 and isinstance(body, dict) else None


@dataclass
class Run:
    """What the scenario did so far; the checks and the summary read it."""

    endpoints: Endpoints
    tokens: Tokens
    run_id: str
    customers: list[str]
    low_credit: list[str]
    placements: list[Placement] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # scenario requests refused
    latencies_ms: list[float] = field(default_factory=list)
    paid_ids: list[str] = field(default_factory=list)
    cancelled_ids: list[str] = field(default_factory=list)  # cancelled by the customer
    refusals: list[str] = field(default_factory=list)  # the 409 / 422 check's offenders
    timings: dict[str, float] = field(default_factory=dict)

    def owners(self) -> dict[str, str]:
        """The customer of each order the run placed, by order id."""
        return {p.order_id: p.customer for p in self.placements if p.order_id}

    def token_of(self, order: Item) -> str:
        """The token of the order's customer (the order as the API shows it)."""
        return self.tokens.customer(order["customer_id"])


def new_run(endpoints: Endpoints, tokens: Tokens, customers: int) -> Run:
    """A run with a fresh id; the first quarter of its customers get a low credit limit."""
    run_id = uuid.uuid4().hex[:8]
    names = [f"demo-{run_id}-c{i}" for i in range(customers)]
    return Run(endpoints, tokens, run_id, names, names[: customers // 4])


@contextlib.contextmanager
def timed(run: Run, phase: str) -> Iterator[None]:
    """Record how long the ``with`` body took as ``run.timings[phase]`` (seconds)."""
    started = time.monotonic()
    try:
        yield
    finally:
        run.timings[phase] = time.monotonic() - started
