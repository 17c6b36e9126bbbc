"""The consistency audit against a distributed system on RabbitMQ and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pika
import psycopg2

from .cluster import Cluster, broker_url

AUDIT = (
    "import argparse, sys\n"
    "from ops import audit\n"
    "from ops.settings import Settings\n"
    "args = argparse.Namespace(json=True, outbox_threshold=60.0, deadline=None)\n"
    "sys.exit(audit.main(Settings.from_env(), args))\n"
)


def run_audit(cluster: Cluster) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-c", AUDIT],
        env=cluster.env,
        cwd=cluster.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def failed(report: dict) -> list[tuple[str, list[str]]]:
    return [(item["code"], item["offenders"]) for item in report["invariants"] if not item["ok"]]


def execute(cluster: Cluster, service: str, sql: str, *params: object) -> None:
    connection = psycopg2.connect(cluster.database_url(service))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        connection.close()


def test_the_audit_passes_after_sagas_and_names_what_breaks(cluster: Cluster) -> None:
    # Given a few orders that went through the saga on the real broker and databases
    who = f"c-{uuid.uuid4().hex[:8]}"
    order_ids = [cluster.place_order(who, "10.00")[1]["id"] for _ in range(4)]
    for order_id in order_ids:
        cluster.wait_for_status(order_id, "confirmed", timeout=60)
    # When the audit runs, then every invariant holds, the broker included
    status, report = run_audit(cluster)
    assert (status, failed(report)) == (0, [])
    i6 = next(item for item in report["invariants"] if item["code"] == "I6")
    assert "invoices.XQ: 0 queued" in i6["detail"]
    # When an invoice's total is changed behind the saga's back
    execute(
        cluster,
        "invoices",
        "UPDATE invoices SET total_minor = total_minor + 1 WHERE order_id = %s",
        order_ids[0],
    )
    # And a message lands in a dead-letter queue without a record
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(cluster.vhost)))
    try:
        connection.channel().basic_publish("", "invoices.XQ", b"{}")
    finally:
        connection.close()
    # Then the audit exits 1 and names exactly those two
    status, report = run_audit(cluster)
    assert status == 1
    assert failed(report) == [
        ("I4", [order_ids[0]]),
        ("I6", ["invoices.XQ (1 queued > 0 recorded)"]),
    ]
