"""Trace context helpers shared by the services: carry it, restore it, name it.

OpenTelemetry's API is a no-op until a tracer provider is configured
(``ops.telemetry``), so these helpers cost next to nothing when tracing is off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import falcon
from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

TRACE_HEADER = "X-Trace-Id"


def current_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``), empty if none."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    return carrier


def current_carrier_json() -> str | None:
    """:func:`current_carrier` as JSON for a database column; None without a trace."""
    carrier = current_carrier()
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


@contextmanager
def restored(carrier: dict[str, str] | str | None) -> Iterator[None]:
    """Make the context in ``carrier`` (a dict or its JSON) current for the block.

    Nothing happens when there is no carrier: the block keeps the current context.
    """
    if isinstance(carrier, str):
        carrier = json.loads(carrier)
    if not carrier:
        yield
        return
    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def untraced() -> Iterator[None]:
    """Suppress instrumentation spans (SQL, HTTP) in the block: for housekeeping such as
    outbox polling and readiness probes, which would otherwise start a trace per poll."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def current_trace_id() -> str | None:
    """The current trace id in hex (32 digits), or None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


class TraceHeader:
    """Falcon middleware: return the request's trace id to the client in ``X-Trace-Id``."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        trace_id = current_trace_id()
        if trace_id:
            resp.set_header(TRACE_HEADER, trace_id)
