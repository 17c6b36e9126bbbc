"""Each HTTP request's SERVER span (Falcon middleware of every front), and its trace id
returned to the client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import falcon
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from ops.shared.telemetry.tracing import current_trace_id, tracer

TRACE_HEADER = "X-Trace-Id"


class _EnvironGetter(Getter[dict[str, Any]]):
    """Reads W3C trace headers (``traceparent``, ``tracestate``) from a WSGI environ."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


_ENVIRON = _EnvironGetter()


class ServerSpans:
    """Falcon middleware: one SERVER span per request, current while it is handled, and
    its trace id returned to the client in ``X-Trace-Id``.

    The span continues the caller's ``traceparent`` (the gateway's, or a client's), is
    named ``<method> <route template>`` (``POST /orders``) and carries the stable HTTP
    attributes: ``http.request.method``, ``url.path``, ``http.route`` and
    ``http.response.status_code``; a 5xx answer sets its status to error (the exception
    itself is recorded by ``ops.shared.web.problems.handle_unexpected``). Paths in
    ``untraced_paths`` (probes and scrapes, which would drown the traces that matter) get
    no span. Put it first in the middleware list, so that every later component
    runs inside the span.

    We write this instead of using ``opentelemetry-instrumentation-falcon``, which
    wraps the WSGI call and collects about fifteen attributes per request: this costs
    about half its CPU per request (docs/performance.md), and it pins its OpenTelemetry
    contrib release exactly (the SQL instrumentations, which do too, are pinned in
    ``setup.cfg`` so that a plain ``pip install .`` resolves).
    """

    def __init__(self, untraced_paths: Iterable[str] = ()) -> None:
        self.untraced_paths = frozenset(untraced_paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in self.untraced_paths:
            return
        span = tracer.start_span(
            req.method,
            context=propagate.extract(req.env, getter=_ENVIRON),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": req.method, "url.path": req.path},
        )
        req.context.orderflow_span = span
        req.context.orderflow_span_token = context.attach(trace.set_span_in_context(span))

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        span = req.context.get("orderflow_span")
        if span is None:
            return
        route = req.uri_template
        if route:
            span.update_name(f"{req.method} {route}")
            span.set_attribute("http.route", route)
        status = resp.status_code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(status))
        trace_id = current_trace_id()  # the span is still current here
        if trace_id:
            resp.set_header(TRACE_HEADER, trace_id)
        span.end()
        context.detach(req.context.orderflow_span_token)
