"""Entry points for ``dramatiq`` worker processes, one per service queue.

    dramatiq ops.worker:orders --queues orders
    dramatiq ops.worker:invoices --queues invoices

Dramatiq calls the function in each worker process; it reads the settings,
binds only that service's database and declares only that queue's actors.

Metrics: Dramatiq's Prometheus middleware serves, from a process of its own, what the
worker processes write under ``dramatiq_prom_db`` (port ``dramatiq_prom_port``).
orderflow's own metrics observed in a worker must land in that directory too, so
``PROMETHEUS_MULTIPROC_DIR`` is pointed at it before ``prometheus_client`` is first
imported: nothing imported at the top of this module may import it.
"""

from __future__ import annotations

import os

import dramatiq

from ops.logs import configure_logging
from ops.settings import Settings
from ops.telemetry import setup_tracing


def _setup(service: str) -> None:
    _share_metrics_directory()
    from dramatiq.middleware.prometheus import Prometheus

    from ops import bootstrap  # imports prometheus_client: only now

    settings = Settings.from_env()
    process = settings.process_name or f"{service}-worker"
    configure_logging(settings.log_level, process, settings.log_format)
    setup_tracing(settings, process)
    bootstrap.init_databases(settings, [service])
    broker = bootstrap.build_worker_broker(settings, [service])
    broker.add_middleware(Prometheus(), before=type(broker.middleware[0]))
    dramatiq.set_broker(broker)


def _share_metrics_directory() -> None:
    """Write this process's metrics where Dramatiq's exporter reads them."""
    from dramatiq.middleware import prometheus  # resolves and creates dramatiq_prom_db

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = prometheus.DB_PATH


def orders() -> None:
    """Set up a worker for the ``orders`` queue."""
    _setup("orders")


def invoices() -> None:
    """Set up a worker for the ``invoices`` queue."""
    _setup("invoices")
