"""Trace context helpers shared by the fronts and services: carry it, restore it, name
it (the HTTP requests' SERVER spans are ``ops.shared.web.spans``).

OpenTelemetry's API is a no-op until a tracer provider is configured
(``ops.telemetry``), so these helpers cost next to nothing when tracing is off.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
)

tracer = trace.get_tracer("orderflow.http")


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


# A W3C traceparent of version 00, the only version orderflow writes.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@functools.lru_cache(maxsize=4096)
def _parsed_traceparent(value: str) -> SpanContext | None:
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match[3], 16)))


def carried_span_context(carrier: Mapping[str, str] | None) -> SpanContext | None:
    """The span context that ``carrier`` (W3C headers, as :func:`current_carrier` writes
    them) holds, or None if it holds no valid one.

    A carrier holding only a version-00 ``traceparent`` (what orderflow writes with the
    default propagators) is parsed directly, and the result remembered: each event of a
    batch is read for its batch span's link and again for its own span. Any other
    carrier goes through the configured propagators."""
    if not carrier:
        return None
    value = carrier.get("traceparent") if len(carrier) == 1 else None
    if isinstance(value, str):
        parsed = _parsed_traceparent(value)
        if parsed is not None:
            return parsed
    span_context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None


def carried_context(carrier: Mapping[str, str] | None) -> context.Context | None:
    """:func:`carried_span_context` as a context to start a child span in; None if none."""
    span_context = carried_span_context(carrier)
    if span_context is None:
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))


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
def linked_trace(
    name: str, carrier: dict[str, str] | str | None, attributes: Mapping[str, str]
) -> Iterator[None]:
    """Run the block in a new trace: a root span ``name`` linked to the span in ``carrier``
    (the trace that caused the work), current for the block.

    For work that happens long after its trace ended (the saga deadline, minutes later):
    a tail-sampling collector has decided on the old trace by then and would drop late
    spans of a trace it did not keep; a trace of its own is decided on its own, and the
    link leads back to the first one.
    """
    if isinstance(carrier, str):
        carrier = json.loads(carrier)
    cause = carried_span_context(carrier) if carrier else None
    with tracer.start_as_current_span(
        name,
        context=context.Context(),  # no parent: a new trace
        links=[trace.Link(cause)] if cause is not None else (),
        attributes=dict(attributes),
    ):
        yield


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
