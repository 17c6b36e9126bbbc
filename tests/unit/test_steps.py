"""The saga step frame (``ops.shared.persistence.steps``): one unit of work that claims the dedupe
keys first; a message already claimed, or seen earlier in its batch, is a duplicate."""

from __future__ import annotations

import contextlib

import pytest

from ops.shared.persistence.steps import batch, step
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.models import OrderStep, ProcessedMessage
from orders.queries import get_order


def test_a_step_runs_once_per_dedupe_key_and_a_failed_one_claims_nothing(databases) -> None:
    calls: list[str] = []

    @step(ProcessedMessage, "test_step")
    def apply(value: str, *, dedupe_key: str) -> str:
        calls.append(value)
        if value == "fail":
            raise ValueError("no")
        return "applied"

    # Given a step that fails once for a key
    with pytest.raises(ValueError):
        apply("fail", dedupe_key="k1")
    # Then the key stays unclaimed: the same message applies later, and only once
    assert apply("ok", dedupe_key="k1") == "applied"
    assert apply("again", dedupe_key="k1") == "duplicate"
    assert calls == ["fail", "ok"]
    assert apply.__name__ == "apply"


def test_a_batch_claims_each_key_once_and_the_second_copy_is_a_duplicate(databases) -> None:
    # Given a key claimed before the batch
    with batch(ProcessedMessage, "test_batch", ["old"]) as earlier:
        earlier.outcomes[0] = "applied"
    # When a batch carries it, a new key twice, and another new key
    spans: list[int] = []

    def around(index: int) -> contextlib.AbstractContextManager[object]:
        spans.append(index)
        return contextlib.nullcontext()

    keys = ["old", "new", "new", "other"]
    with batch(ProcessedMessage, "test_batch", keys, around) as claimed:
        for index in claimed.fresh:
            with claimed.around(index):
                claimed.outcomes[index] = "applied"
    # Then only the first copies of the new keys are fresh, each wrapped by around
    assert claimed.fresh == spans == [1, 3]
    assert claimed.outcomes == ["duplicate", "applied", "duplicate", "applied"]


def test_cancel_order_refuses_a_reason_the_saga_never_sends(databases) -> None:
    # Given a pending order
    order = orders.place_order(NewOrder("c1", "EUR", (Line("SKU-1", 1, 100),)))
    # When a cancel_order message names the customer's or the deadline's reason
    for reason in ("customer_cancelled", "expired"):
        with pytest.raises(KeyError):
            orders.cancel_order(str(order.id), reason, dedupe_key=f"key-{reason}")
    # Then nothing changed: the order is pending, with no step but its placing
    assert get_order(order.id).status == "pending"
    assert OrderStep.select().where(OrderStep.order_id == order.id).count() == 1
    assert ProcessedMessage.select().count() == 0
