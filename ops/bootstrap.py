"""Bootstrap: the only place that builds objects from settings.

Entry points (``ops.cli``, ``ops.worker``, ``ops.standalone``) call these
functions; nothing here runs at import time and nothing connects until the
first query or publish.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import dramatiq
import falcon
import peewee

from actors.broker import RetryPolicy, build_broker, connection_parameters, keep_alive
from actors.outbound import batch_publisher
from invoices import accounts as invoices_accounts
from ops import gauges
from ops.services import NAMES, consumers, described, descriptions
from ops.settings import Settings
from ops.shared.persistence import migrations, redeliveries
from ops.shared.persistence.database import open_database
from ops.shared.persistence.idempotency import IdempotencyStore
from ops.shared.persistence.relay import Chore, Relay
from ops.shared.values.money import to_minor
from ops.shared.web.auth import TokenKeys

if TYPE_CHECKING:
    from ops.audit.watch import HealthWatch

log = logging.getLogger(__name__)

# a redelivery count matters for minutes; a day keeps it for a post-mortem
REDELIVERY_MEMORY = dt.timedelta(days=1)


class NoSigningKey(RuntimeError):
    """No JWT key is configured and no development key exists yet."""


def token_keys(settings: Settings, *, create_dev_key: bool = False) -> TokenKeys:
    """The keys that verify (and, where a private key is known, sign) tokens.

    Configured keys win: ``ORDERFLOW_JWT_PUBLIC_KEY`` (+ ``…_PRIVATE_KEY``) for RS256,
    else ``ORDERFLOW_JWT_SECRET`` for HS256. Without either, the development secret
    under the data directory is used; ``create_dev_key`` creates it on first use.
    """
    issuer, audience = settings.jwt_issuer, settings.jwt_audience
    if settings.jwt_public_key:
        return TokenKeys.rs256(settings.jwt_public_key, settings.jwt_private_key, issuer, audience)
    if settings.jwt_secret:
        return TokenKeys.hs256(settings.jwt_secret.encode(), issuer, audience)
    path = settings.dev_key_path
    if not path.exists():
        if not create_dev_key:
            raise NoSigningKey(
                "no JWT key configured: set ORDERFLOW_JWT_SECRET (HS256) or "
                "ORDERFLOW_JWT_PUBLIC_KEY (RS256), or run `orderflow standalone` or "
                f"`orderflow up` once to create a development key in {path}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
        log.warning(
            "created a development JWT key in %s; set ORDERFLOW_JWT_SECRET or "
            "ORDERFLOW_JWT_PUBLIC_KEY in production",
            path,
        )
    return TokenKeys.hs256(path.read_text().strip().encode(), issuer, audience)


class SchemaOutOfDate(RuntimeError):
    """The database has migrations that were not applied; run ``orderflow migrate``."""


def init_databases(
    settings: Settings,
    services: Iterable[str] = NAMES,
    *,
    require_schema: bool = True,
    read_only: bool = False,
) -> dict[str, peewee.Database]:
    """Open (lazily) each service's database and bind its models to it; with
    ``read_only``, PostgreSQL refuses every write on them."""
    databases = {}
    for service in services:
        database = open_database(settings.database_url(service), read_only=read_only)
        described(service).database.initialize(database)
        databases[service] = database
        if require_schema and (
            pending := migrations.pending(database, described(service).migrations, service)
        ):
            raise SchemaOutOfDate(
                f"the {service} database lacks migrations {', '.join(pending)}; "
                "run `orderflow migrate`"
            )
    invoices_accounts.configure(to_minor(settings.default_credit_limit))
    return databases


def migrate(settings: Settings, services: Iterable[str] = NAMES) -> dict[str, list[str]]:
    """Create or upgrade each service's schema; returns the migrations applied per service."""
    applied = {}
    for service in services:
        database = open_database(settings.database_url(service))
        try:
            applied[service] = migrations.migrate(database, described(service).migrations, service)
        finally:
            database.close()
    return applied


def migration_status(
    settings: Settings, services: Iterable[str] = NAMES
) -> dict[str, list[tuple[str, dt.datetime | None]]]:
    """Each service's migrations with when each was applied (None: pending); changes
    nothing."""
    result = {}
    for service in services:
        database = open_database(settings.database_url(service))
        try:
            result[service] = migrations.status(database, described(service).migrations, service)
        finally:
            database.close()
    return result


def build_worker_broker(settings: Settings, services: Iterable[str] = NAMES) -> dramatiq.Broker:
    """The broker for workers of ``services`` (databases must be initialised first)."""
    return build_broker(
        settings.broker_url,
        consumers=[consumers()[service] for service in services],
        retries=RetryPolicy(
            settings.max_retries,
            settings.min_backoff_ms,
            settings.max_backoff_ms,
            settings.max_redeliveries,
        ),
        queue_type=settings.queue_type,
    )


def build_relay(settings: Settings, service: str, broker: dramatiq.Broker) -> Relay:
    """The outbox relay of ``service``, with its periodic chores."""
    description = described(service)
    store = IdempotencyStore(description.idempotency, settings.idempotency_ttl, service=service)
    chores = [
        Chore("purge-idempotency-keys", 600.0, store.purge_expired),
        Chore(
            "purge-redelivery-counts",
            3600.0,
            functools.partial(redeliveries.purge, description.redeliveries, REDELIVERY_MEMORY),
        ),
        gauges.chore(description, settings.saga_timeout),
    ]
    if (expire_overdue := description.expire_overdue) is not None:
        timeout = settings.saga_timeout
        pause = min(5.0, max(timeout / 10, 0.2))
        chores.append(Chore("saga-deadline", pause, lambda: expire_overdue(timeout)))
    return Relay(
        f"{service}-relay",
        description.outbox,
        publish_batch=batch_publisher(broker),
        batch=settings.relay_batch,
        poll_interval=settings.relay_poll_interval,
        chores=chores,
        idle=keep_alive(broker),
    )


def broker_check(settings: Settings) -> Callable[[], None]:
    """A readiness check for the broker: connect and close (cached for two seconds)."""
    if settings.broker_url is None:
        return lambda: None
    import pika

    parameters = connection_parameters(settings.broker_url)
    state = {"checked": 0.0}
    lock = threading.Lock()

    def check() -> None:
        with lock:
            if time.monotonic() - state["checked"] < 2.0:
                return
            pika.BlockingConnection(parameters).close()
            state["checked"] = time.monotonic()

    return check


def parts_check(settings: Settings, service: str) -> Callable[[], None]:
    """A readiness check that fails while ``orderflow up`` reports this service's worker
    pool or relay as failing (it keeps exiting soon after each start)."""
    from ops.shared.web.http import NotReady
    from ops.supervisor import failing_parts

    def check() -> None:
        failing = failing_parts(settings.data_dir, [f"{service}-worker", f"{service}-relay"])
        if failing:
            raise NotReady("; ".join(failing))

    return check


def build_app(settings: Settings, service: str) -> falcon.App:
    """The HTTP app of ``service``: ``orders`` or ``invoices`` (whose database must be
    initialised first), ``gateway`` (no database: HTTP to the other two and the audit
    part), or ``audit`` (both databases initialised: read-only where they can be)."""
    if service == "gateway":
        from gateway.app import create_app

        return create_app(
            orders_url=settings.service_url("orders"),
            invoices_url=settings.service_url("invoices"),
            audit_url=settings.service_url("audit"),
            timeout=settings.gateway_timeout,
            token_keys=token_keys(settings),
            trace_url_template=settings.trace_url_template,
        )
    if service == "audit":
        return build_audit_app(settings, health_watch(settings))
    from ops.dlq import http as dead_letters_http

    app = described(service).create_app(
        idempotency_ttl=settings.idempotency_ttl,
        max_body_bytes=settings.max_body_bytes,
        ready_checks={"broker": broker_check(settings), "parts": parts_check(settings, service)},
        token_keys=token_keys(settings),
    )
    publisher = None
    if settings.broker_url is not None:
        publisher = dead_letters_http.lazy_publisher(settings.broker_url, settings.queue_type)
    dead_letters_http.add_routes(app, service, publisher)  # the operators' dlq over HTTP
    return app


def health_watch(settings: Settings) -> HealthWatch:
    """The audit part's watch (both databases initialised): the audit re-run every
    ``AUDIT_INTERVAL`` seconds once started, backlogs, dead letters and queues on request."""
    from ops import audit
    from ops.audit.watch import HealthWatch
    from ops.shared.persistence.database import discard_connection

    def run() -> audit.AuditReport:
        try:
            return audit.run_audit(settings, broker_depth=audit.dead_letter_depths(settings))
        finally:  # the next run, seconds later, opens fresh connections
            for service in descriptions():
                discard_connection(service.database)

    return HealthWatch(
        run,
        {service.name: functools.partial(gauges.reading, service) for service in descriptions()},
        lambda: audit.queue_depths(settings),
        interval=settings.audit_interval,
    )


def build_audit_app(settings: Settings, watch: HealthWatch) -> falcon.App:
    """The audit part's app (``orderflow serve audit``) serving ``watch``'s report."""
    from ops.audit import http as audit_http

    return audit_http.create_app(
        watch,
        databases={service.name: service.database for service in descriptions()},
        ready_checks={"broker": broker_check(settings)},
        token_keys=token_keys(settings),
    )
