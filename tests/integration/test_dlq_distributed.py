"""``orderflow dlq list``, ``replay`` and ``recover`` on the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from .cluster import Cluster, account_locked, quick_to_give_up, wait_until


def orderflow(cluster: Cluster, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``orderflow ARGV`` as an operator would, with the cluster's environment."""
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        env=cluster.env,
        cwd=cluster.workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dead_letters(cluster: Cluster, *flags: str) -> list[dict]:
    done = orderflow(cluster, "dlq", "list", "--json", *flags)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def invoices_of(cluster: Cluster, order_id: str) -> list[dict]:
    return cluster.request("GET", "invoices", f"/invoices?order_id={order_id}")[1]["items"]


def recorded_actors(cluster: Cluster, order_id: str) -> list[str]:
    rows = cluster.query(
        "invoices",
        "SELECT actor_name FROM invoices_dead_letters WHERE order_id = %s ORDER BY actor_name",
        order_id,
    )
    return [actor for (actor,) in rows]


def dead_lettered_order(cluster: Cluster) -> dict:
    """Place an order whose ``issue_invoice`` dead-letters (on a ``quick_to_give_up``
    cluster, while another session holds the customer's account row); the order is
    cancelled, and its ``void_invoice`` compensation dead-letters too, so no tombstone
    bars a late invoice. Returns the order as placed."""
    who = f"c-{uuid.uuid4().hex[:8]}"
    with account_locked(cluster, who):
        _, order = cluster.place_order(who)
        wait_until(
            lambda: recorded_actors(cluster, order["id"]) == ["issue_invoice", "void_invoice"],
            60,
            "issue_invoice and void_invoice to be dead-lettered",
        )
    return order


def test_a_dead_letter_is_listed_replayed_once_and_the_saga_stays_consistent(
    make_cluster,
) -> None:
    # Given an invoices worker that gives up quickly on a lock it cannot get, and an order
    # whose issue_invoice (and so its void_invoice) dead-lettered
    cluster = quick_to_give_up(make_cluster)
    order = dead_lettered_order(cluster)
    cancelled = cluster.wait_for_status(order["id"], "cancelled", timeout=60)
    assert cancelled["cancel_reason"] == "invoice_failed"

    # Then the operator sees both dead letters, not yet replayed
    listed = [item for item in dead_letters(cluster) if item["order_id"] == order["id"]]
    assert sorted(item["actor_name"] for item in listed) == ["issue_invoice", "void_invoice"]
    (letter,) = [item for item in listed if item["actor_name"] == "issue_invoice"]
    assert (letter["service"], letter["queue_name"], letter["attempts"]) == (
        "invoices",
        "invoices",
        2,
    )
    assert letter["replayed_at"] is None and letter["age_seconds"] >= 0
    assert letter["message"]["kwargs"]["dedupe_key"] == letter["dedupe_key"]

    # When the operator replays the issue_invoice dead letter
    done = orderflow(cluster, "dlq", "replay", letter["message_id"], "--by", "tester")
    assert done.returncode == 0, done.stderr
    old_id, arrow, new_id, *rest = done.stdout.split()
    assert (old_id, arrow, new_id != old_id) == (letter["message_id"], "->", True)
    assert rest == ["issue_invoice", "on", "invoices"]

    # Then the record says who replayed it and when, and the default list no longer shows it
    (replayed,) = [item for item in dead_letters(cluster, "--all") if item["message_id"] == old_id]
    assert replayed["replayed_by"] == "tester" and replayed["replayed_at"].endswith("Z")
    assert old_id not in [item["message_id"] for item in dead_letters(cluster)]

    # And the replayed step issues the invoice, which the orders side has voided at once:
    # the order stays cancelled as invoice_failed
    wait_until(
        lambda: [i["status"] for i in invoices_of(cluster, order["id"])] == ["void"],
        60,
        "the replayed invoice to be issued and voided",
    )
    assert cluster.order(order["id"])["cancel_reason"] == "invoice_failed"
    issued = (
        f"issue_invoice order_id={order['id']} dedupe_key={letter['dedupe_key']} outcome=issued"
    )
    assert issued in cluster.log("invoices-worker")

    # And every invariant holds, the dead-letter queue's depth included
    wait_until(lambda: orderflow(cluster, "audit", "--json").returncode == 0, 60, "a clean audit")
    report = json.loads(orderflow(cluster, "audit", "--json").stdout)
    i6 = next(item for item in report["invariants"] if item["code"] == "I6")
    assert "invoices.XQ: 2 queued, 2 recorded" in i6["detail"]

    # When it is replayed a second time without --again, it is refused
    done = orderflow(cluster, "dlq", "replay", old_id, "--by", "tester")
    assert done.returncode == 1
    assert done.stdout == "" and "already replayed" in done.stderr

    # When it is replayed once more with --again, the consumer's dedupe absorbs it
    done = orderflow(cluster, "dlq", "replay", old_id, "--again", "--by", "tester")
    assert done.returncode == 0, done.stderr
    duplicate = (
        f"issue_invoice order_id={order['id']} dedupe_key={letter['dedupe_key']} outcome=duplicate"
    )
    wait_until(lambda: duplicate in cluster.log("invoices-worker"), 60, "the repeat to be absorbed")
    assert [i["status"] for i in invoices_of(cluster, order["id"])] == ["void"]
    assert orderflow(cluster, "audit", "--json").returncode == 0


def test_replay_refuses_an_unknown_id_and_needs_a_broker(make_cluster) -> None:
    cluster = make_cluster()
    # An unknown id: exit 1 with the reason
    done = orderflow(cluster, "dlq", "replay", "no-such-message")
    assert done.returncode == 1 and "unknown" in done.stderr
    # The same as JSON, for scripts: one document on stdout, the same exit status
    done = orderflow(cluster, "dlq", "replay", "no-such-message", "--json", "--by", "tester")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["replayed"] == [] and report["by"] == "tester"
    assert [item["message_id"] for item in report["not_replayed"]] == ["no-such-message"]
    assert "unknown" in report["not_replayed"][0]["reason"]
    # And recover --json on empty dead-letter queues: every queue complete, nothing to do
    done = orderflow(cluster, "dlq", "recover", "--json")
    assert done.returncode == 0, done.stderr
    assert [
        (queue["queue"], queue["messages"], queue["recorded_now"], queue["complete"])
        for queue in json.loads(done.stdout)["queues"]
    ] == [("orders.XQ", 0, [], True), ("invoices.XQ", 0, [], True)]
    # Without BROKER_URL (standalone keeps messages in memory): exit 2, explained
    cluster.env = {key: value for key, value in cluster.env.items() if key != "BROKER_URL"}
    done = orderflow(cluster, "dlq", "replay", "no-such-message")
    assert done.returncode == 2 and "BROKER_URL is not set" in done.stderr


def test_a_dead_letter_the_worker_could_not_record_is_recovered_from_the_xq(
    make_cluster,
) -> None:
    # Given an invoices worker that gives up quickly on a lock it cannot get
    cluster = quick_to_give_up(make_cluster)
    who = f"c-{uuid.uuid4().hex[:8]}"
    # ... while another session holds the customer's account row and the dead-letter
    # table, so the worker cannot write the record either
    with account_locked(cluster, who, "invoices_dead_letters"):
        # When an order is placed, issue_invoice fails for good and reaches the .XQ unrecorded
        _, order = cluster.place_order(who)
        wait_until(
            lambda: (
                "could not record the dead letter" in cluster.log("invoices-worker")
                and cluster.queue_depth("invoices.XQ") == 1
            ),
            60,
            "issue_invoice to be dead-lettered without a record",
        )
    # Then the order is still pending and the audit finds the unrecorded message
    assert cluster.order(order["id"])["status"] == "pending"
    assert recorded_actors(cluster, order["id"]) == []
    done = orderflow(cluster, "audit", "--json")
    assert done.returncode == 1
    (i6,) = [item for item in json.loads(done.stdout)["invariants"] if item["code"] == "I6"]
    assert i6["offenders"] == ["invoices.XQ (1 queued > 0 recorded)"]

    # When the operator runs recover
    done = orderflow(cluster, "dlq", "recover")
    # Then the message is recorded, as the worker would have, and stays in the .XQ
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        "orders.XQ: empty",
        "invoices.XQ: 1 message(s): 0 recorded already, 1 recorded now",
    ]
    message_id, actor, *_ = lines[2].split()
    assert actor == "issue_invoice"
    (letter,) = [item for item in dead_letters(cluster) if item["order_id"] == order["id"]]
    assert (letter["message_id"], letter["attempts"]) == (message_id, 2)
    assert cluster.queue_depth("invoices.XQ") == 1
    # And the saga ends as it would have: InvoiceFailed cancels the order
    cancelled = cluster.wait_for_status(order["id"], "cancelled", timeout=60)
    assert cancelled["cancel_reason"] == "invoice_failed"
    wait_until(lambda: orderflow(cluster, "audit").returncode == 0, 60, "a clean audit")
    # And a second run records nothing twice
    done = orderflow(cluster, "dlq", "recover", "--service", "invoices")
    assert (done.returncode, done.stdout.splitlines()) == (
        0,
        ["invoices.XQ: 1 message(s): 1 recorded already, 0 recorded now"],
    )
    assert recorded_actors(cluster, order["id"]) == ["issue_invoice"]
