"""The gateway's Falcon app: ``create_app`` wires clients, middleware and routes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import falcon

from gateway import console
from gateway.clients import ServiceClient
from gateway.compose import Upstream
from gateway.graphql import build_schema
from gateway.outcomes import UpstreamProblem
from gateway.resources import (
    GraphQL,
    MyOrder,
    MyOrders,
    OpsDeadLetterReplay,
    OpsDeadLetters,
    OpsHealth,
    OpsOrder,
    OpsOrders,
    Readiness,
    handle_upstream_problem,
)
from ops.shared.web.auth import TokenKeys
from ops.shared.web.http import create_base_app

SERVICE = "gateway"
MAX_BODY_BYTES = 64 * 1024  # like the services: larger bodies answer 413
UPSTREAM_THREADS = 32  # calls in flight to the services, shared by all requests
# and, per service, the keep-alive connections kept open: one per thread that may use it
AUDIT_CONNECTIONS = 2  # the audit part serves a few operators' consoles, not every request


def create_app(
    *,
    orders_url: str,
    invoices_url: str,
    audit_url: str,
    timeout: float,
    token_keys: TokenKeys,
    trace_url_template: str | None = None,
) -> falcon.App:
    """The gateway HTTP app: no database; the services at ``orders_url`` and
    ``invoices_url``, and the audit part at ``audit_url`` (``/ops/health`` only), are
    called with ``timeout`` seconds per call.

    Every route but ``/health``, ``/ready``, ``/metrics`` (and ``/openapi.json``, where the wiring
    serves ``gateway/openapi.json``) needs a Bearer token that ``token_keys``
    verifies: 401 before any service is called.
    """
    pool = ThreadPoolExecutor(max_workers=UPSTREAM_THREADS, thread_name_prefix="gateway-call")
    upstream = Upstream(
        orders=ServiceClient("orders", orders_url, timeout, pool, UPSTREAM_THREADS),
        invoices=ServiceClient("invoices", invoices_url, timeout, pool, UPSTREAM_THREADS),
        audit=ServiceClient("audit", audit_url, timeout, pool, AUDIT_CONNECTIONS),
    )
    app = create_base_app(
        SERVICE,
        max_body_bytes=MAX_BODY_BYTES,
        token_keys=token_keys,
        ready=Readiness(SERVICE, upstream),
        public_prefixes=[console.PREFIX],
        middleware=[console.SecurityHeaders()],
    )
    app.add_error_handler(UpstreamProblem, handle_upstream_problem)
    app.add_route("/me/orders", MyOrders(upstream))
    app.add_route("/me/orders/{order_id:uuid}", MyOrder(upstream))
    app.add_route("/ops/orders", OpsOrders(upstream))
    app.add_route("/ops/orders/{order_id:uuid}", OpsOrder(upstream))
    app.add_route("/ops/dead-letters", OpsDeadLetters(upstream))
    app.add_route("/ops/dead-letters/{service}/{message_id}/replay", OpsDeadLetterReplay(upstream))
    app.add_route("/ops/health", OpsHealth(upstream))
    app.add_route("/graphql", GraphQL(build_schema(), upstream))
    files = console.ConsoleFiles(console.load_files(trace_url_template))
    app.add_route(console.PREFIX, files)
    app.add_route(f"{console.PREFIX}/{{name}}", files)
    return app
