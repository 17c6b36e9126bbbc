"""Integration-tier fixtures: the real RabbitMQ and PostgreSQL, or a clear skip.

Outside CI an unreachable server skips these tests with the reason; under
``CI=true`` it fails them, so a CI run can never pass without covering them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pika
import psycopg2
import pytest

from .cluster import AMQP_BASE, VHOST, Cluster, admin_connection, broker_url


def _unreachable() -> str | None:
    try:
        admin_connection().close()
    except psycopg2.Error as exc:
        return f"PostgreSQL is unreachable ({str(exc).strip()})"
    try:
        pika.BlockingConnection(pika.URLParameters(f"{AMQP_BASE}/%2F")).close()
    except pika.exceptions.AMQPError as exc:
        return f"RabbitMQ is unreachable ({exc!r})"
    return None


def _ensure_vhost() -> str:
    """The test vhost, created with rabbitmqctl when we can; the default vhost otherwise."""
    try:
        pika.BlockingConnection(pika.URLParameters(broker_url(VHOST))).close()
        return VHOST
    except pika.exceptions.AMQPError:
        pass
    if shutil.which("rabbitmqctl"):
        subprocess.run(
            ["rabbitmqctl", "add_vhost", VHOST], capture_output=True, timeout=60, check=False
        )
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        return VHOST
    return "/"


@pytest.fixture(scope="session")
def servers() -> str:
    """Checks both servers once per session; returns the RabbitMQ vhost to use."""
    problem = _unreachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}: integration tests cannot run and CI=true forbids skipping")
        pytest.skip(problem)
    return _ensure_vhost()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def make_cluster(
    servers: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[callable]:
    """Builds clusters with environment overrides; tears them down after the test."""
    clusters: list[Cluster] = []

    def make(**overrides: str) -> Cluster:
        cluster = Cluster(tmp_path, servers, **overrides)
        cluster.create()
        clusters.append(cluster)
        return cluster

    yield make
    failed = getattr(request.node, "rep_call", None)
    for cluster in clusters:
        if failed is not None and failed.failed:
            print(cluster.logs())
        cluster.destroy()


@pytest.fixture
def cluster(make_cluster: callable) -> Cluster:
    """A running distributed system with default settings."""
    running = make_cluster()
    running.start()
    return running


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
