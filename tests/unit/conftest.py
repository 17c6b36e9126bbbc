"""Unit-tier fixtures: SQLite files and Dramatiq's stub broker, all in this process."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from ops import bootstrap
from ops.services import NAMES
from ops.settings import Settings
from ops.shared.persistence.relay import Relay
from ops.shared.web.auth import mint

TEST_SECRET = "unit-tests-only-secret-0123456789abcdef"


def collect_spans(exporter: SpanExporter) -> None:
    """Send every span finished from now on to ``exporter`` as well. OpenTelemetry allows
    one global tracer provider per process: the first caller sets it, later ones add to it."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))


@dataclasses.dataclass
class StubSystem:
    """Both services, their relays and a stub worker in one process."""

    settings: Settings
    broker: StubBroker
    worker: dramatiq.Worker
    relays: dict[str, Relay]

    def drain(self, rounds: int = 50) -> None:
        """Publish every outbox row and process every message, until nothing moves."""
        for _ in range(rounds):
            published = sum(relay.run_once() for relay in self.relays.values())
            for queue in ("orders", "invoices"):
                self.broker.join(queue, fail_fast=False, timeout=10_000)
            self.worker.join()
            if published == 0:
                return
        raise AssertionError("the saga did not settle")

    def relay_once(self) -> int:
        return sum(relay.run_once() for relay in self.relays.values())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path,
        max_retries=2,
        min_backoff_ms=10,
        max_backoff_ms=50,
        default_credit_limit=Decimal("1000.00"),
        worker_threads=2,
    )


@pytest.fixture
def databases(settings: Settings) -> Iterator[dict]:
    bootstrap.migrate(settings)
    databases = bootstrap.init_databases(settings)
    yield databases
    for database in databases.values():
        database.close()


@pytest.fixture
def stub_system(settings: Settings, databases: dict) -> Iterator[StubSystem]:
    broker = bootstrap.build_worker_broker(settings)
    dramatiq.set_broker(broker)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    relays = {service: bootstrap.build_relay(settings, service, broker) for service in NAMES}
    yield StubSystem(settings, broker, worker, relays)
    worker.stop()
    broker.close()


@pytest.fixture
def token(settings: Settings):
    """Mints tokens: ``token("c1")`` for a customer, ``token("ops", "operator")``."""
    keys = bootstrap.token_keys(settings)

    def make(subject: str, role: str = "customer", ttl: int = 300) -> str:
        return mint(keys, subject, role, ttl)

    return make
