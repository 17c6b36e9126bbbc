"""Batch messages as separate processes on the real RabbitMQ and PostgreSQL: a batch that
fails or dies with its worker is split, and every order still settles exactly once."""

from __future__ import annotations

import uuid

from .cluster import Cluster, account_locked, quick_to_give_up, wait_until


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def place_while_the_relay_is_down(cluster: Cluster, *customers: str) -> list[str]:
    """Orders placed with the orders relay stopped, so it later sends them as one batch."""
    cluster.stop("orders-relay")
    return [cluster.place_order(who)[1]["id"] for who in customers]


def outbox_sent(cluster: Cluster) -> bool:
    ((unpublished,),) = cluster.query(
        "orders", "SELECT count(*) FROM orders_outbox WHERE published_at IS NULL"
    )
    return unpublished == 0


def test_events_waiting_together_run_as_one_batch_on_each_side(make_cluster) -> None:
    # Given five orders of five customers waiting in the outbox
    cluster = make_cluster()
    cluster.start()
    placed = place_while_the_relay_is_down(cluster, *[customer() for _ in range(5)])
    # When the relay sends them
    cluster.start("orders-relay")
    # Then each is confirmed, by one issue_invoices and one confirm_orders call, unsplit
    for order_id in placed:
        cluster.wait_for_status(order_id, "confirmed", timeout=30)
    wait_until(
        lambda: "confirm_orders batch_size=5" in cluster.log("orders-worker"),
        10,
        "the confirmations to run as one batch",
    )
    assert "issue_invoices batch_size=5" in cluster.log("invoices-worker")
    assert "split" not in cluster.log("invoices-worker") + cluster.log("orders-worker")
    steps = cluster.query(
        "orders", "SELECT count(*) FROM order_steps WHERE event = 'InvoiceIssued'"
    )
    assert steps == [(5,)]


def test_a_batch_redelivered_after_its_worker_died_is_split_and_settles_every_order_once(
    make_cluster,
) -> None:
    # Given five orders of one customer sent as one batch message
    cluster = make_cluster()
    cluster.start()
    who = customer()
    placed = place_while_the_relay_is_down(cluster, *[who] * 5)
    # ... which the invoices worker took and is stuck on, behind a lock on the account
    with account_locked(cluster, who):
        cluster.start("orders-relay")
        wait_until(
            lambda: outbox_sent(cluster) and cluster.queue_depth("invoices") == 0,
            30,
            "the worker to take the batch",
        )
        # When the worker dies holding it, and a new one starts
        cluster.kill("invoices-worker")
        cluster.start("invoices-worker")
        # Then RabbitMQ redelivers the batch, and the worker splits it into plain messages
        wait_until(
            lambda: "issue_invoices batch of 5 split" in cluster.log("invoices-worker"),
            30,
            "the redelivered batch to be split",
        )
    # And once the lock is gone every order is confirmed with one invoice, numbered 1..5
    for order_id in placed:
        cluster.wait_for_status(order_id, "confirmed", timeout=60)
    numbers = cluster.query("invoices", "SELECT order_id, sequence FROM invoices")
    assert sorted(order_id for order_id, _ in numbers) == sorted(placed)
    assert sorted(sequence for _, sequence in numbers) == [1, 2, 3, 4, 5]
    assert cluster.query("invoices", "SELECT count(*) FROM invoices_dead_letters") == [(0,)]
    # and the account's outstanding total counts each invoice once
    ((outstanding, total),) = cluster.query(
        "invoices",
        "SELECT a.outstanding_minor, (SELECT sum(total_minor) FROM invoices"
        " WHERE customer_id = a.customer_id) FROM billing_accounts a WHERE customer_id = %s",
        who,
    )
    assert outstanding == total


def test_a_batch_where_one_customer_fails_for_good_dead_letters_only_that_customers_events(
    make_cluster,
) -> None:
    # Given an invoices worker that gives up quickly on a lock it cannot get
    cluster = quick_to_give_up(make_cluster)
    stuck, free = customer(), customer()
    # ... and one batch with two orders of a customer whose account another session holds
    # and three of a customer whose account is free
    placed = place_while_the_relay_is_down(cluster, stuck, free, stuck, free, free)
    with account_locked(cluster, stuck):
        # When the batch runs: it fails, is retried, then split into plain messages
        cluster.start("orders-relay")
        for index in (1, 3, 4):
            cluster.wait_for_status(placed[index], "confirmed", timeout=60)
        for index in (0, 2):
            cancelled = cluster.wait_for_status(placed[index], "cancelled", timeout=60)
            assert cancelled["cancel_reason"] == "invoice_failed"
    # Then the free customer's orders were confirmed, and only the stuck customer's two
    # events were dead-lettered, each as a plain issue_invoice, never the batch
    assert "issue_invoices batch of 5 split" in cluster.log("invoices-worker")
    letters = cluster.query(
        "invoices", "SELECT actor_name, order_id FROM invoices_dead_letters ORDER BY order_id"
    )
    assert letters == sorted(("issue_invoice", placed[index]) for index in (0, 2))
    assert cluster.queue_depth("invoices.XQ") == 2
    ((issued,),) = cluster.query("invoices", "SELECT count(*) FROM invoices")
    assert issued == 3
