"""The saga as separate processes over HTTP, on the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from actors import catalogue

from .cluster import Cluster, account_locked, broker_url, quick_to_give_up, wait_until


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def invoices_of(cluster: Cluster, order_id: str) -> list[dict]:
    return cluster.request("GET", "invoices", f"/invoices?order_id={order_id}")[1]["items"]


def test_an_order_within_credit_is_confirmed_with_one_invoice(cluster: Cluster) -> None:
    # When a customer places an order
    status, order = cluster.place_order(customer(), "12.34", 2)
    assert (status, order["status"]) == (201, "pending")
    # Then it is confirmed, with exactly one invoice of the same total
    confirmed = cluster.wait_for_status(order["id"], "confirmed")
    (invoice,) = invoices_of(cluster, order["id"])
    assert confirmed["invoice_number"] == invoice["number"] == "INV-000001"
    assert (invoice["total"], invoice["currency"], invoice["status"]) == ("24.68", "EUR", "issued")


def test_an_order_over_the_credit_limit_is_cancelled_as_credit_rejected(cluster: Cluster) -> None:
    # Given a customer with a 50.00 credit limit
    who = customer()
    cluster.request("PUT", "invoices", f"/accounts/{who}", {"credit_limit": "50.00"})
    # When they order for 60.00
    _, order = cluster.place_order(who, "60.00")
    # Then the order is cancelled as credit_rejected and no invoice exists
    cancelled = cluster.wait_for_status(order["id"], "cancelled")
    assert cancelled["cancel_reason"] == "credit_rejected"
    assert invoices_of(cluster, order["id"]) == []


def test_cancelling_a_confirmed_order_voids_its_invoice(cluster: Cluster) -> None:
    _, order = cluster.place_order(customer())
    cluster.wait_for_status(order["id"], "confirmed")
    # When the customer cancels after invoicing
    status, cancelled, _ = cluster.request("POST", "orders", f"/orders/{order['id']}/cancel")
    assert (status, cancelled["cancel_reason"]) == (200, "customer_cancelled")
    # Then the compensation voids the invoice
    wait_until(
        lambda: invoices_of(cluster, order["id"])[0]["status"] == "void",
        30,
        "the invoice to be voided",
    )


def test_paying_an_invoice_marks_the_order_paid(cluster: Cluster) -> None:
    who = customer()
    _, order = cluster.place_order(who, "5.00", 3)
    confirmed = cluster.wait_for_status(order["id"], "confirmed")
    payments = f"/invoices/{confirmed['invoice_id']}/payments"
    # A wrong amount is refused, the exact total pays
    assert (
        cluster.request(
            "POST", "invoices", payments, {"amount": "14.99"}, token=cluster.token(who)
        )[0]
        == 422
    )
    status, invoice, _ = cluster.request(
        "POST", "invoices", payments, {"amount": "15.00"}, token=cluster.token(who)
    )
    assert (status, invoice["status"]) == (200, "paid")
    # Then the order becomes paid, and a paid order cannot be cancelled
    cluster.wait_for_status(order["id"], "paid")
    assert cluster.request("POST", "orders", f"/orders/{order['id']}/cancel")[0] == 409


def test_a_pending_order_expires_and_its_late_invoice_is_voided(make_cluster) -> None:
    # Given a system whose invoices worker is down and whose deadline is one second
    # (one worker thread: the queued issue_invoice runs before the void_invoice behind
    # it; with several, the void can win the race and leave a tombstone instead, which
    # is also a correct ending but not the one under test)
    cluster = make_cluster(ORDERS_SAGA_TIMEOUT="1", WORKER_THREADS="1")
    cluster.start("orders-api", "invoices-api", "orders-worker", "orders-relay", "invoices-relay")
    _, order = cluster.place_order(customer())
    # When the deadline passes
    expired = cluster.wait_for_status(order["id"], "cancelled", timeout=30)
    assert expired["cancel_reason"] == "expired"
    # And the invoices worker comes back, issuing the invoice after the cancellation
    cluster.start("invoices-worker")
    # Then that invoice is voided and the order stays cancelled
    invoice = wait_until(
        lambda: (
            (items := invoices_of(cluster, order["id"]))
            and items[0]["status"] == "void"
            and items[0]
        ),
        30,
        "the void",
    )
    assert invoice["void_reason"] == "expired"
    assert cluster.order(order["id"])["status"] == "cancelled"


def test_the_same_message_delivered_twice_issues_one_invoice(make_cluster) -> None:
    # Given OrderPlaced published while the invoices worker is down
    cluster = make_cluster()
    cluster.start("orders-api", "invoices-api", "orders-worker", "orders-relay", "invoices-relay")
    _, order = cluster.place_order(customer())
    row = wait_until(
        lambda: cluster.query(
            "orders",
            "SELECT event_type, event_id, payload FROM orders_outbox "
            "WHERE aggregate_id = %s AND published_at IS NOT NULL",
            order["id"],
        ),
        30,
        "the publish",
    )
    event_type, event_id, payload = row[0]
    # When the broker holds a second copy of the very same message
    broker = RabbitmqBroker(url=broker_url(cluster.vhost), confirm_delivery=True)
    try:
        for message in catalogue.messages_for(event_type, str(event_id), json.loads(payload)):
            broker.enqueue(message)
    finally:
        broker.close()
    assert cluster.queue_depth("invoices") == 2
    cluster.start("invoices-worker")
    # Then both are consumed, one invoice exists, and the copy was absorbed as a duplicate
    cluster.wait_for_status(order["id"], "confirmed")
    wait_until(
        lambda: "outcome=duplicate" in cluster.log("invoices-worker"),
        30,
        "the duplicate to be absorbed",
    )
    assert len(invoices_of(cluster, order["id"])) == 1
    assert cluster.query("invoices", "SELECT count(*) FROM invoices")[0][0] == 1


def test_killing_the_invoices_worker_mid_stream_loses_nothing(cluster: Cluster) -> None:
    # Given a steady stream of orders
    who = [customer() for _ in range(5)]
    accepted: list[str] = []

    def place(index: int) -> None:
        status, order = cluster.place_order(who[index % 5])
        assert status == 201
        accepted.append(order["id"])

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(place, index) for index in range(150)]
        # When the invoices worker is killed with SIGKILL while it issues invoices
        wait_until(
            lambda: cluster.query("invoices", "SELECT count(*) FROM invoices")[0][0] >= 5,
            30,
            "the first invoices",
        )
        cluster.kill("invoices-worker")
        for future in futures:
            future.result()
    # And restarted
    cluster.start("invoices-worker")
    # Then every order is confirmed with exactly one invoice, numbered without gaps
    wait_until(
        lambda: (
            cluster.query("orders", "SELECT count(*) FROM orders WHERE status = 'confirmed'")[0][0]
            == 150
        ),
        90,
        "all 150 orders to be confirmed",
    )
    per_order = cluster.query(
        "invoices", "SELECT order_id, count(*) FROM invoices GROUP BY order_id"
    )
    assert sorted(order_id for order_id, _ in per_order) == sorted(accepted)
    assert {count for _, count in per_order} == {1}
    sequences = [
        s for (s,) in cluster.query("invoices", "SELECT sequence FROM invoices ORDER BY sequence")
    ]
    assert sequences == list(range(1, 151))


def test_orders_are_accepted_while_rabbitmq_is_down_and_finish_when_it_is_back(
    cluster: Cluster,
) -> None:
    # Given RabbitMQ is stopped
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    try:
        # When customers place orders
        placed = [cluster.place_order(customer()) for _ in range(20)]
        # Then they are accepted and wait in the outbox
        assert {status for status, _ in placed} == {201}
        assert (
            cluster.query(
                "orders", "SELECT count(*) FROM orders_outbox WHERE published_at IS NULL"
            )[0][0]
            == 20
        )
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    # And once RabbitMQ is back every order finishes
    for _, order in placed:
        cluster.wait_for_status(order["id"], "confirmed", timeout=90)


def test_twenty_concurrent_requests_with_one_key_create_one_order(cluster: Cluster) -> None:
    who, key = customer(), str(uuid.uuid4())
    barrier = threading.Barrier(20)

    def send(_: int) -> tuple[int, dict]:
        barrier.wait()
        return cluster.place_order(who, key=key)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {201, 409}
    created = {body["id"] for status, body in answers if status == 201}
    assert len(created) == 1
    assert (
        cluster.query("orders", "SELECT count(*) FROM orders WHERE customer_id = %s", who)[0][0]
        == 1
    )
    # And a retry after the dust settles replays the same order
    status, again = cluster.place_order(who, key=key)
    assert (status, again["id"]) == (201, created.pop())


def test_exhausted_retries_cancel_the_order_as_invoice_failed(make_cluster) -> None:
    # Given an invoices worker that gives up quickly on a lock it cannot get
    cluster = quick_to_give_up(make_cluster)
    who = customer()
    # ... while another session holds the customer's account row
    with account_locked(cluster, who):
        # When an order for that customer is placed
        _, order = cluster.place_order(who)
        # Then the saga ends: the order is cancelled as invoice_failed
        cancelled = cluster.wait_for_status(order["id"], "cancelled", timeout=60)
        assert cancelled["cancel_reason"] == "invoice_failed"
    # And the failure is recorded in the database and kept in the dead-letter queue
    (letter,) = cluster.query(
        "invoices",
        "SELECT actor_name, attempts, error FROM invoices_dead_letters WHERE order_id = %s",
        order["id"],
    )
    assert letter[:2] == ("issue_invoice", 2)
    assert "LockNotAvailable" in letter[2] or "lock timeout" in letter[2]
    assert cluster.queue_depth("invoices.XQ") == 1
    assert invoices_of(cluster, order["id"]) == []


def test_the_message_catalogue_routes_every_event(servers: str) -> None:
    messages = catalogue.messages_for(
        "OrderPlaced",
        str(uuid.uuid4()),
        {"order_id": "o", "customer_id": "c", "total": "1.00", "currency": "EUR"},
    )
    assert [(m.queue_name, m.actor_name) for m in messages] == [("invoices", "issue_invoice")]
    assert all(isinstance(m, dramatiq.Message) for m in messages)
