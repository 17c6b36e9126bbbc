"""Logging setup for every orderflow process: one line per event, process named."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", process: str | None = None) -> None:
    """Send log lines to standard error at ``level``; quiet the chattiest libraries."""
    if process:
        import multiprocessing

        multiprocessing.current_process().name = process
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)
    # pika logs every dropped connection as an ERROR with a stack, including the idle
    # publishing connections RabbitMQ closes for missed heartbeats, which Dramatiq and
    # the relay simply reopen; they log real outages themselves (as warnings).
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # waitress logs every "task queue depth" as a warning; threads being busy is not one.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
