"""Entry points for ``dramatiq`` worker processes, one per service queue.

    dramatiq ops.worker:orders --queues orders
    dramatiq ops.worker:invoices --queues invoices

Dramatiq calls the function in each worker process; it reads the settings,
binds only that service's database and declares only that queue's actors.
"""

from __future__ import annotations

import dramatiq

from ops import bootstrap
from ops.logs import configure_logging
from ops.settings import Settings
from ops.telemetry import setup_tracing


def _setup(service: str) -> None:
    settings = Settings.from_env()
    process = settings.process_name or f"{service}-worker"
    configure_logging(settings.log_level, process, settings.log_format)
    setup_tracing(settings, process)
    bootstrap.init_databases(settings, [service])
    dramatiq.set_broker(bootstrap.build_worker_broker(settings, [service]))


def orders() -> None:
    """Set up a worker for the ``orders`` queue."""
    _setup("orders")


def invoices() -> None:
    """Set up a worker for the ``invoices`` queue."""
    _setup("invoices")
