"""Past one machine: orderflow on a three-node RabbitMQ cluster and a PostgreSQL primary
with a streaming standby, started here from Debian's packages (``tests.cluster.servers``).

``nox -s tests`` runs the harness check and a short C1 and C4; ``nox -s cluster``
(``CLUSTER_SCALE=full``) runs C1-C5 and writes the table to ``results/``. Outside CI a
machine without the servers' packages skips with the reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pika
import psycopg2
import pytest

from actors.broker import connection_parameters
from tests.chaos.harness import SCALES, Outcome, keep_table
from tests.cluster.scenarios import BY_CODE, run, table
from tests.cluster.servers import PostgresPair, RabbitCluster, missing

pytestmark = pytest.mark.integration

SCALE = SCALES[os.environ.get("CLUSTER_SCALE", "short")]
# the scenarios a run takes: C1 and C4 in the test suite, all five in nox -s cluster
ONLY = [c.strip() for c in os.environ.get("CLUSTER_ONLY", "C1,C4").split(",") if c.strip()]
OUTCOMES: list[Outcome] = []


@pytest.fixture(scope="module", autouse=True)
def servers_here() -> None:
    if (reason := missing()) is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the cluster servers cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def cluster_table() -> Iterator[None]:
    """After the scenarios: print the table and keep it (and the details) under results/."""
    yield
    keep_table("cluster", SCALE, OUTCOMES, table)


def test_the_harness_joins_three_rabbitmq_nodes_and_streams_to_a_synchronous_standby(
    tmp_path: Path,
) -> None:
    rabbit = RabbitCluster(tmp_path / "rabbitmq")
    pair = PostgresPair()
    try:
        rabbit.start()
        pair.start()
        # Then every node knows all three as running
        for node in rabbit.nodes:
            status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
            assert sorted(status["running_nodes"]) == sorted(n.name for n in rabbit.nodes)
        # And a client given every node reaches the cluster when the first is down
        rabbit.nodes[0].kill()
        connection = pika_connection(rabbit.broker_url())
        connection.close()
        # And the standby is synchronous: a commit on the primary is on the standby
        pair.sql(pair.primary, "CREATE TABLE marks (n int)")
        pair.sql(pair.primary, "INSERT INTO marks VALUES (1)")
        assert pair.sql(pair.standby, "SELECT n FROM marks") == [(1,)]
        # And a multi-host URL with target_session_attrs=read-write finds the primary ...
        assert primary_port(pair.url("postgres")) == pair.primary.port
        # ... and, after the primary died and the standby was promoted, the new one
        pair.kill_primary()
        pair.promote()
        assert primary_port(pair.url("postgres")) == pair.standby.port
    finally:
        pair.stop()
        rabbit.stop()


def pika_connection(broker_url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(broker_url))


def primary_port(url: str) -> int:
    connection = psycopg2.connect(url)
    try:
        return int(connection.info.port)
    finally:
        connection.close()


@pytest.mark.parametrize("code", [code for code in BY_CODE if code in ONLY])
def test_the_saga_loses_nothing_when_a_node_or_the_primary_dies(code: str, tmp_path: Path) -> None:
    scenario = BY_CODE[code]
    outcome = run(scenario, SCALE, tmp_path)
    OUTCOMES.append(outcome)
    assert outcome.accepted > 0
    if scenario.must_lose:  # C5: asynchronous replication loses commits; we must see it
        assert outcome.passed, "no loss seen: the standby was not behind when the primary died"
        return
    assert outcome.drained, "the system did not drain"
    assert outcome.audit_failed == []
    assert outcome.harness_problems == []
