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
    logging.getLogger("pika").setLevel(logging.WARNING)
    # waitress logs every "task queue depth" as a warning; threads being busy is not one.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
