"""The operator commands on the real servers: migrate twice, and ``orderflow up``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from .cluster import Cluster, wait_until


def test_migrate_is_versioned_and_safe_to_run_twice(make_cluster) -> None:
    # Given databases that `cluster.create()` has just migrated
    cluster: Cluster = make_cluster()
    # When migrate runs again
    again = subprocess.run(
        [sys.executable, "-m", "ops.cli", "migrate"],
        env=cluster.env,
        cwd=cluster.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Then nothing is applied twice, and the history names each migration once
    assert again.stdout.splitlines() == [
        "orders: schema is up to date",
        "invoices: schema is up to date",
    ]
    expected = {
        "orders": [
            "0001_initial",
            "0002_order_steps",
            "0003_trace_context",
            "0004_redeliveries",
            "0005_outbox_indexes",
        ],
        "invoices": [
            "0001_initial",
            "0002_trace_context",
            "0003_redeliveries",
            "0004_outstanding",
            "0005_outbox_indexes",
        ],
    }
    for service, names in expected.items():
        history = cluster.query(
            service, f"SELECT name FROM {service}_schema_migrations ORDER BY id"
        )
        assert [name for (name,) in history] == names


def test_orderflow_up_runs_every_part_and_stops_them_on_ctrl_c(make_cluster) -> None:
    # Given `orderflow up` on fresh databases
    cluster: Cluster = make_cluster()
    log = (cluster.workdir / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up"],
        env=cluster.env,
        cwd=cluster.workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Then it says where each part listens, and an order goes through the whole saga
        wait_until(
            lambda: "all parts started" in (cluster.workdir / "up.log").read_text(),
            30,
            "orderflow up to start its children",
        )
        printed = (cluster.workdir / "up.log").read_text()
        for part in (
            "orders-api",
            "invoices-api",
            "orders-worker",
            "invoices-worker",
            "orders-relay",
            "invoices-relay",
        ):
            assert part in printed
        assert f"http://127.0.0.1:{cluster.ports['orders']}" in printed
        for service in ("orders", "invoices", "gateway"):
            wait_until(
                lambda service=service: cluster.request("GET", service, "/ready")[0] == 200,
                30,
                f"{service} to be ready",
            )
        _, order = cluster.place_order("up-customer")
        cluster.wait_for_status(order["id"], "confirmed")
        children = _children(up.pid)
        assert len(children) >= 6
        # When the operator presses Ctrl-C
        os.killpg(up.pid, signal.SIGINT)
        # Then every part stops and `up` exits 0
        assert up.wait(60) == 0
        wait_until(lambda: not any(_alive(pid) for pid in children), 30, "children to exit")
        assert "orderflow up: stopped" in (cluster.workdir / "up.log").read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == parent:
                    found.append(int(entry))
                    frontier.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
