"""Standalone mode: the whole system in one process, no servers needed.

The HTTP fronts (both services, the gateway, the audit part), both relays and Dramatiq
worker threads share Dramatiq's
in-process stub broker; each service keeps its own SQLite file under the data
directory. Messages live in memory: a crash loses those in flight, so on
start the relays republish the events of the last ``saga_timeout`` seconds
(consumers' dedupe keys absorb the repeats), and the saga deadline cancels
any order that still never finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import dramatiq

from ops import bootstrap
from ops.services import FRONTS, NAMES
from ops.serving import http_server, run_http_server, start_thread, stop_event_on_signals
from ops.settings import Settings
from ops.shared.persistence.database import unit_of_work
from ops.shared.values.clock import utcnow

log = logging.getLogger(__name__)

STANDALONE_POLL_INTERVAL = 0.05  # no LISTEN/NOTIFY on SQLite: poll the outbox often


def run(settings: Settings) -> None:
    """Run everything until SIGINT or SIGTERM."""
    if settings.distributed:
        raise SystemExit("standalone mode ignores BROKER_URL; unset it or use `orderflow up`")
    settings = dataclasses.replace(
        settings, relay_poll_interval=min(settings.relay_poll_interval, STANDALONE_POLL_INTERVAL)
    )
    bootstrap.migrate(settings)
    bootstrap.init_databases(settings)
    bootstrap.token_keys(settings, create_dev_key=True)
    broker = bootstrap.build_worker_broker(settings)
    dramatiq.set_broker(broker)
    stop = stop_event_on_signals()

    cutoff = utcnow() - dt.timedelta(seconds=settings.saga_timeout)
    relays = [bootstrap.build_relay(settings, service, broker) for service in NAMES]
    for relay in relays:
        with unit_of_work(relay.database):
            count = (
                relay.model.update(published_at=None)
                .where(relay.model.published_at >= cutoff)
                .execute()
            )
        if count:
            log.info("%s: republishing %d recent events after restart", relay.name, count)

    worker = dramatiq.Worker(broker, worker_threads=settings.worker_threads)
    worker.start()
    for relay in relays:
        start_thread(relay.name, relay.run, stop)
    servers = []
    for service in FRONTS:
        server = http_server(
            bootstrap.build_app(settings, service), settings, settings.port(service)
        )
        servers.append(start_thread(f"{service}-http", run_http_server, server, stop))
        log.info("%s API listening on http://%s:%d", service, settings.host, settings.port(service))
    urls = " ".join(f"{front} http://{settings.host}:{settings.port(front)}" for front in FRONTS)
    print(f"orderflow standalone: {urls} (data in {settings.data_dir}/); Ctrl-C stops", flush=True)
    stop.wait()
    for thread in servers:
        thread.join(10)
    worker.stop(timeout=10_000)
    log.info("standalone stopped")
