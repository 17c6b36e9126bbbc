"""Where metrics leave a process: the HTTP middleware, ``GET /metrics``, the relays' server.

The catalogue itself is ``ops.shared.telemetry.metrics``.
"""

from __future__ import annotations

import logging
import time

import falcon
from falcon.routing import CompiledRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server

from ops.shared.telemetry.metrics import HTTP_DURATION, HTTP_REQUESTS, OTHER_METHOD, UNMATCHED_ROUTE

log = logging.getLogger(__name__)


class HttpMetrics:
    """Falcon middleware: counts and times every request by front, route template, method
    and status. Put it first, so it times authentication too and sees the final status.

    ``route`` is the URI template (``/orders/{order_id:uuid}``), never the raw path; a
    request refused before routing (401) is labelled with the template it would have
    reached, and a path no route matches with ``unmatched``.
    """

    def __init__(self, service: str, router: CompiledRouter) -> None:
        self.service = service
        self.router = router

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        route = req.uri_template or self._template(req.path)
        method = req.method if req.method in falcon.COMBINED_METHODS else OTHER_METHOD
        status = str(falcon.http_status_to_code(resp.status))
        HTTP_REQUESTS.labels(self.service, route, method, status).inc()
        started = getattr(req.context, "metrics_started", None)
        if started is not None:
            elapsed = time.perf_counter() - started
            HTTP_DURATION.labels(self.service, route, method).observe(elapsed)

    def _template(self, path: str) -> str:
        found = self.router.find(path)
        return (found[3] if found is not None else None) or UNMATCHED_ROUTE


class MetricsResource:
    """``GET /metrics``: this process's metrics in Prometheus's text format (public)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(REGISTRY)


def serve(host: str, port: int) -> bool:
    """Serve this process's metrics on ``http://host:port/metrics`` from a daemon thread.

    A port already taken is logged and otherwise ignored: the caller (a relay) goes on
    with its real work. Returns whether the server started.
    """
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s; going on without them", host, port, exc)
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True
