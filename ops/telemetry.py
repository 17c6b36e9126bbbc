"""Tracing setup for one orderflow process: OpenTelemetry SDK, exporter, SQL instrumentations.

Off by default. ``OTEL_TRACES_EXPORTER=otlp`` exports over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK reads the standard ``OTEL_EXPORTER_OTLP_*``
variables itself); ``console`` prints spans. Each process names itself
(``service.name`` = ``orders-api``, ``invoices-worker``, ``orders-relay``, …).
A span per SQL statement is off unless ``ORDERFLOW_TRACE_SQL=true``: the
HTTP, publish and process spans already follow an order across every hop, and
statement spans cost about a millisecond of CPU per order (``nox -s bench``).
HTTP SERVER spans come from our own middleware (``ops.shared.web.spans.ServerSpans``)
and message spans from ``actors.tracing``; both use the global tracer provider this
sets. Call :func:`setup_tracing` before the process opens a database connection:
with SQL spans, the instrumentations patch ``psycopg2.connect`` and
``sqlite3.connect``.
"""

from __future__ import annotations

import atexit
import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from ops.settings import Settings

log = logging.getLogger(__name__)


def setup_tracing(settings: Settings, process: str) -> bool:
    """Configure tracing for this process as ``process``; returns False when it is off."""
    if settings.traces_exporter == "none":
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": process, "service.namespace": "orderflow"})
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    if settings.trace_sql:  # a span per statement: detail for an investigation
        _instrument_sql()
    log.info(
        "tracing on: %s exporter, service.name=%s, SQL spans %s",
        settings.traces_exporter,
        process,
        "on" if settings.trace_sql else "off",
    )
    return True


def _exporter(settings: Settings) -> SpanExporter:
    if settings.traces_exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _instrument_sql() -> None:
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    Psycopg2Instrumentor().instrument(skip_dep_check=True)
    SQLite3Instrumentor().instrument()
