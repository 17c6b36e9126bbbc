"""The saga on RabbitMQ quorum queues (``RABBITMQ_QUEUE_TYPE=quorum``), on the real servers.

Quorum queues are what a RabbitMQ cluster replicates; one node runs them too, so the
declarations, consumers, retries' delay queues and dead-letter queues are exercised
here as they would be in a cluster. A queue's type is fixed when it is declared, so
the test runs in a vhost of its own, deleted afterwards.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from .cluster import Cluster


@pytest.fixture
def quorum_vhost(servers: str) -> Iterator[str]:
    """A fresh vhost for quorum queues (needs rabbitmqctl, like the other fixtures)."""
    vhost = f"orderflow-quorum-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, check=True)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )
    yield vhost
    subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, check=False)


def queue_types(vhost: str) -> dict[str, str]:
    """``{queue: type}`` of every queue in ``vhost``, as RabbitMQ reports them."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split() for line in listed.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) == 2 and row[0] != "name"}


def test_the_saga_runs_on_quorum_queues(quorum_vhost: str, tmp_path) -> None:
    # Given the whole system declaring quorum queues in a vhost of its own
    cluster = Cluster(tmp_path, quorum_vhost, RABBITMQ_QUEUE_TYPE="quorum")
    cluster.create()
    try:
        cluster.start()

        # When customers place orders, one of them over the credit limit
        placed = [cluster.place_order(f"q-{uuid.uuid4().hex[:8]}", "10.00", 1) for _ in range(5)]
        over = cluster.place_order(f"q-{uuid.uuid4().hex[:8]}", "20000.00", 1)

        # Then every step ran over quorum queues: confirmed, and the rejection compensated
        for status, order in placed:
            assert status == 201
            confirmed = cluster.wait_for_status(order["id"], "confirmed")
            assert confirmed["invoice_number"].startswith("INV-")
        cancelled = cluster.wait_for_status(over[1]["id"], "cancelled")
        assert cancelled["cancel_reason"] == "credit_rejected"
        types = queue_types(quorum_vhost)
        for queue in ("orders", "invoices", "orders.DQ", "invoices.DQ", "orders.XQ", "invoices.XQ"):
            assert types.get(queue) == "quorum", types
    finally:
        cluster.destroy()
