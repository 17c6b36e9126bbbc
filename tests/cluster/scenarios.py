"""C1-C5: orderflow on a three-node RabbitMQ cluster and a PostgreSQL primary with a
standby, under load, while nodes and the primary die.

Each scenario runs through the chaos harness (``tests.chaos.harness``): open-loop load,
the fault, recovery, drain, ``orderflow audit``, and the per-order checks (every
accepted order exists and settled, none expired). orderflow is configured the ordinary
way: ``BROKER_URL`` names the three nodes, the database URLs name both PostgreSQL
servers with ``target_session_attrs=read-write``, and the queues are quorum queues.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.chaos.harness import Chaos, Outcome, Scale, Scenario, run_scenario
from tests.cluster.servers import VHOST, PostgresPair, RabbitCluster, poll
from tests.integration.cluster import Servers

ENV = {"RABBITMQ_QUEUE_TYPE": "quorum"}


@dataclasses.dataclass
class Backing:
    """The servers one scenario runs on."""

    rabbit: RabbitCluster
    postgres: PostgresPair
    local_databases: tuple[str, ...] = ()

    def servers(self) -> Servers:
        return Servers(
            local_databases=self.local_databases,
            amqp_bases=tuple(
                f"amqp://guest:guest@127.0.0.1:{node.port}" for node in self.rabbit.nodes
            ),
            pg_hosts=f"127.0.0.1:{self.postgres.primary.port},127.0.0.1:{self.postgres.standby.port}",
            pg_params=(("target_session_attrs", "read-write"), ("connect_timeout", "2")),
        )


def node_down_and_back(
    pick: Callable[[Backing], object],
) -> Callable[[Backing], Callable[[Chaos], None]]:
    """``kill -9`` the node ``pick`` chooses at 30 % of the load, start it again at 60 %."""

    def make(backing: Backing) -> Callable[[Chaos], None]:
        def inject(chaos: Chaos) -> None:
            chaos.at(0.3)
            node = pick(backing)
            chaos.notes["killed"] = node.name  # type: ignore[attr-defined]
            node.kill()  # type: ignore[attr-defined]
            chaos.injected()
            chaos.at(0.6)
            node.start()  # type: ignore[attr-defined]
            chaos.cleared()

        return inject

    return make


def rolling_restart(backing: Backing) -> Callable[[Chaos], None]:
    """Stop and start each node in turn, as an upgrade does, one at a time."""

    def inject(chaos: Chaos) -> None:
        for index, node in enumerate(backing.rabbit.nodes):
            chaos.at(0.15 + 0.25 * index)
            node.stop()
            chaos.injected()
            node.start()
        chaos.cleared()

    return inject


def primary_fails_over(lag_standby: bool) -> Callable[[Backing], Callable[[Chaos], None]]:
    """``kill -9`` the primary at 40 % of the load and promote the standby; the old primary
    stays down. With ``lag_standby`` the primary's WAL sender is paused for two seconds
    first (as a network partition between the two would), so an asynchronous standby is
    behind when the primary dies; a synchronous one would hold every commit instead."""

    def make(backing: Backing) -> Callable[[Chaos], None]:
        def inject(chaos: Chaos) -> None:
            chaos.at(0.4)
            pair = backing.postgres
            sender = None
            if lag_standby:
                sender = wal_sender_pid(pair)
                os.kill(sender, signal.SIGSTOP)
                time.sleep(2.0)  # the fault itself: the standby hears nothing for 2 s
                chaos.notes["standby_behind_by_bytes"] = pair.sql(
                    pair.primary,
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)"
                    " FROM pg_stat_replication",
                )
            pair.kill_primary()
            if sender is not None:  # dies with its postmaster, as the partition never heals
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sender, signal.SIGKILL)
            chaos.injected()
            started = time.monotonic()
            pair.promote()
            chaos.notes["promoted_in_s"] = round(time.monotonic() - started, 1)
            chaos.cleared()

        return inject

    return make


def wal_sender_pid(pair: PostgresPair) -> int:
    """The primary's WAL sender serving the standby."""
    return poll(
        lambda: pair.sql(pair.primary, "SELECT pid FROM pg_stat_replication")[0][0],
        30,
        "the primary's WAL sender",
    )


def second_node(backing: Backing) -> object:
    return backing.rabbit.nodes[1]


def invoices_leader(backing: Backing) -> object:
    return backing.rabbit.leader_of("invoices")


@dataclasses.dataclass(frozen=True)
class ClusterScenario:
    """A cluster scenario: the chaos scenario made from the servers it runs on, and
    whether its PostgreSQL standby is synchronous."""

    code: str
    title: str
    make: Callable[[Backing], Callable[[Chaos], None]]
    synchronous: bool = True
    must_lose: bool = False  # C5: the loss is the point; the checks must see it
    # services whose database stays on the machine's own server, off the pair
    local_databases: tuple[str, ...] = ()
    drain_timeout: float | None = None

    def scenario(self, backing: Backing) -> Scenario:
        return Scenario(
            self.code,
            self.title,
            self.make(backing),
            env=ENV,
            expect_loss=self.must_lose,
            drain_timeout=self.drain_timeout,
        )


SCENARIOS = [
    ClusterScenario(
        "C1",
        "RabbitMQ node killed (not the first), then restarted",
        node_down_and_back(second_node),
    ),
    ClusterScenario(
        "C2",
        "the invoices queue's leader killed, then restarted",
        node_down_and_back(invoices_leader),
    ),
    ClusterScenario("C3", "rolling restart of all three nodes", rolling_restart),
    ClusterScenario("C4", "PostgreSQL primary killed, standby promoted", primary_fails_over(False)),
    # The orders database alone fails over (the invoices database is on another server,
    # as each service's would be): what the orders database forgets, the invoices
    # database still knows, and the audit sees the difference.
    ClusterScenario(
        "C5",
        "asynchronous standby behind, orders primary killed (must lose)",
        primary_fails_over(True),
        synchronous=False,
        must_lose=True,
        local_databases=("invoices",),
        drain_timeout=60.0,  # orders whose confirmation was lost stay pending: no drain
    ),
]
BY_CODE = {scenario.code: scenario for scenario in SCENARIOS}


def run(scenario: ClusterScenario, scale: Scale, workdir: Path) -> Outcome:
    """Start the servers, run ``scenario`` on them, tear everything down."""
    rabbit = RabbitCluster(workdir / "rabbitmq")
    postgres = PostgresPair(synchronous=scenario.synchronous)
    try:
        rabbit.start()
        postgres.start()
        backing = Backing(rabbit, postgres, scenario.local_databases)
        (workdir / "orderflow").mkdir(exist_ok=True)
        return run_scenario(
            scenario.scenario(backing), scale, workdir / "orderflow", VHOST, backing.servers()
        )
    finally:
        postgres.stop()
        rabbit.stop()


def lost(outcome: Outcome) -> str:
    """Accepted orders the databases no longer hold (the per-order check's count)."""
    for problem in outcome.harness_problems:
        if "accepted orders missing" in problem:
            return problem.split()[0]
    return "0"


def table(outcomes: list[Outcome]) -> str:
    """The cluster table in Markdown: the chaos table's columns, the longest time
    without an accepted order, and the accepted orders lost."""
    head = (
        "| scenario | orders accepted | faults | longest without a 201 (s) | recovery (s) "
        "| drained | audit | duplicates absorbed | restarts | lost | result |\n"
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|\n"
    )
    rows = [
        f"| {o.scenario} {o.title} | {o.accepted} | {o.faults} | "
        f"{'-' if o.longest_gap_s is None else o.longest_gap_s} | "
        f"{'-' if o.recovery_s is None else o.recovery_s} | {'yes' if o.drained else 'no'} | "
        f"{o.audit_text()} | {o.duplicates_absorbed} | {o.restarts} | {lost(o)} | "
        f"{'PASS' if o.passed else 'FAIL'} |"
        for o in outcomes
    ]
    return head + "\n".join(rows) + "\n"
