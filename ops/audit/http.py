"""The audit part's HTTP front (``orderflow serve audit``): the system's health, for
operators and the console.

It reads both services' databases and asks the broker for its queue depths, so it
is a part of its own rather than a route of either service (each owns one database)
or of the gateway (which owns none). It writes nothing: on PostgreSQL its sessions are
read-only (``ops.bootstrap.init_databases``). ``GET /report`` is the only route besides
the base app's ``/health``, ``/ready``, ``/openapi.json`` and ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable

import falcon

from ops.audit.watch import HealthWatch
from ops.shared.web.auth import TokenKeys, require_operator
from ops.shared.web.http import Database, create_base_app

SERVICE = "audit"


class Report:
    """``GET /report``: the last audit (I1-I7), outbox backlogs, dead letters and queue
    depths (:meth:`HealthWatch.report`); operators only. The first one starts the watch's
    audit thread, so a part nobody asks runs no audit."""

    def __init__(self, watch: HealthWatch) -> None:
        self.watch = watch

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(req)
        self.watch.start()
        resp.media = self.watch.report()
        resp.cache_control = ["no-store"]


def create_app(
    watch: HealthWatch,
    *,
    databases: dict[str, Database],
    ready_checks: dict[str, Callable[[], None]],
    token_keys: TokenKeys,
) -> falcon.App:
    """The audit part's app over ``databases`` (``orders`` and ``invoices``, initialised):
    ``/ready`` checks each of them and ``ready_checks``; ``/report`` serves ``watch``."""
    app = create_base_app(
        SERVICE,
        databases={f"{name}-database": database for name, database in databases.items()},
        max_body_bytes=1024,  # no route reads a body
        ready_checks=ready_checks,
        token_keys=token_keys,
        openapi_package="ops.audit",
    )
    app.add_route("/report", Report(watch))
    return app
