"""Logging for every orderflow process: one line per event, with the trace id.

Text by default; ``LOG_FORMAT=json`` writes one JSON object per line. Every line
carries the process name and, inside a trace, ``trace_id``/``span_id``; saga steps
add ``order_id``, ``dedupe_key`` and ``actor`` (passed as ``extra``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from opentelemetry import trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s%(trace)s: %(message)s"
EXTRA_FIELDS = ("order_id", "dedupe_key", "actor", "outcome")


class TraceContext(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (empty outside a trace) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = trace.format_trace_id(span_context.trace_id)
            record.span_id = trace.format_span_id(span_context.span_id)
            record.trace = f" trace_id={record.trace_id}"
        else:
            record.trace_id = record.span_id = None
            record.trace = ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, process, logger, message, trace and saga ids."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": record.processName,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("trace_id", "span_id", *EXTRA_FIELDS):
            value = getattr(record, field, None)
            if value is not None:
                document[field] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(
    level: str = "INFO", process: str | None = None, log_format: str = "text"
) -> None:
    """Send log lines to standard error at ``level``; quiet the chattiest libraries."""
    if process:
        import multiprocessing

        multiprocessing.current_process().name = process
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContext())
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # pika logs every dropped connection as an ERROR with a stack, including the idle
    # publishing connections RabbitMQ closes for missed heartbeats, which Dramatiq and
    # the relay simply reopen; they log real outages themselves (as warnings).
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # waitress logs every "task queue depth" as a warning; threads being busy is not one.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
