"""Waiting for the saga to drain: every order settled, every event delivered, nothing in flight.

Polled with a deadline (never a fixed sleep): the state is read once a second and the
saga has drained when nothing is pending or queued and nothing was processed between
two reads.
"""

from __future__ import annotations

from .cluster import QUEUES, Cluster, wait_until


def saga_state(system: Cluster) -> tuple:
    """What is still moving: pending orders, unpublished events, queued messages, and
    the messages each side has processed (unchanged between two polls: nothing in flight)."""
    pending = system.query("orders", "SELECT count(*) FROM orders WHERE status = 'pending'")
    unpublished = [
        system.query(service, f"SELECT count(*) FROM {service}_outbox WHERE published_at IS NULL")
        for service in ("orders", "invoices")
    ]
    queued = [system.queue_depth(queue) for queue in QUEUES if not queue.endswith(".XQ")]
    processed = [
        system.query(service, f"SELECT count(*) FROM {service}_processed_messages")
        for service in ("orders", "invoices")
    ]
    return pending[0][0], *(rows[0][0] for rows in unpublished), *queued, processed


def wait_until_drained(system: Cluster, timeout: float) -> None:
    """Poll until no order is pending, every event is published, the queues are empty,
    and nothing was processed since the previous poll."""
    previous: list[tuple] = []

    def drained() -> bool:
        state = saga_state(system)
        settled = not any(state[:-1]) and previous[-1:] == [state]
        previous.append(state)
        return settled

    try:
        wait_until(drained, timeout, "the saga to drain", interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still moving: {previous[-1]}\n{system.logs()}") from None
