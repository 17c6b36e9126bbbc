"""The audit part's view of the system's health, for the console's Health view.

:class:`HealthWatch` keeps the last audit (I1-I7), run again in the background a
fixed pause after the previous run ended, since a run reads both databases whole;
and, on each request, the cheap figures: each service's outbox backlog and unreplayed
dead letters, and the depth of every queue (cached for a couple of seconds, so many
open consoles cost no more than one). What cannot be read becomes a ``problems``
entry naming the part, never an error of the whole answer: a health view must still
show what it can when a database or the broker is down.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ops.audit.report import AuditReport
from ops.shared.values.clock import utcnow

log = logging.getLogger(__name__)

FRESH_SECONDS = 2.0  # how long a reading of backlogs and queues is served again

AuditRun = Callable[[], AuditReport]
# service → (outbox events not yet published, age in seconds of the oldest, unreplayed dead letters)
ServiceReading = Callable[[], tuple[int, float | None, int]]
# queue → (messages ready, consumers); None when there is no RabbitMQ (standalone)
QueueReading = Callable[[], Mapping[str, tuple[int, int]] | None]


def iso(moment: dt.datetime) -> str:
    """Naive UTC as ISO 8601 with a ``Z``, to the second."""
    return moment.isoformat(timespec="seconds") + "Z"


def describe(exc: BaseException) -> str:
    """An error's class and first line: enough for an operator, no stack trace."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class HealthWatch:
    """The last audit, re-run every ``interval`` seconds on a thread of its own once
    :meth:`start` is called, and fresh backlogs and queues."""

    def __init__(
        self,
        audit: AuditRun,
        services: Mapping[str, ServiceReading],
        queues: QueueReading,
        *,
        interval: float,
        fresh: float = FRESH_SECONDS,
    ) -> None:
        self.audit = audit
        self.services = services
        self.queues = queues
        self.interval = interval
        self.fresh = fresh
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: AuditReport | None = None
        self._duration: float | None = None
        self._error: str | None = None
        self._running = False
        self._runs = 0
        self._reading: tuple[float, dict[str, Any]] | None = None

    def start(self) -> None:
        """Start the audit thread (once)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="audit-watch", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the audit thread after its current run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> None:
        """Run the audit now, keeping its report (or the error and the previous report)."""
        with self._lock:
            self._running = True
        started = time.monotonic()
        try:
            report = self.audit()
        except Exception as exc:
            log.warning("audit run failed: %s", describe(exc))
            with self._lock:
                self._error = describe(exc)
                self._running = False
                self._runs += 1
            return
        with self._lock:
            self._last = report
            self._duration = time.monotonic() - started
            self._error = None
            self._running = False
            self._runs += 1

    @property
    def runs(self) -> int:
        """How many audit runs have ended (failed ones too)."""
        with self._lock:
            return self._runs

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def report(self) -> dict[str, Any]:
        """The health report: ``audit`` (the last run, ``null`` until the first ends),
        ``services`` (outbox and dead letters), ``queues`` (``null`` without RabbitMQ) and
        ``problems`` (what could not be read, by part)."""
        with self._lock:
            audit = {
                "report": None if self._last is None else self._last.to_dict(),
                "duration_seconds": None if self._duration is None else round(self._duration, 3),
                "running": self._running,
                "error": self._error,
                "interval_seconds": self.interval,
            }
        return {"at": iso(utcnow()), "audit": audit, **self._reading_now()}

    def _reading_now(self) -> dict[str, Any]:
        """Backlogs and queues, read again when the last reading is older than ``fresh``."""
        with self._lock:
            if self._reading is not None and time.monotonic() - self._reading[0] < self.fresh:
                return self._reading[1]
        reading = self._read()
        with self._lock:
            self._reading = (time.monotonic(), reading)
        return reading

    def _read(self) -> dict[str, Any]:
        problems: list[dict[str, str]] = []
        services = []
        for service, read in self.services.items():
            try:
                pending, oldest, dead = read()
            except Exception as exc:
                problems.append({"part": f"{service} database", "detail": describe(exc)})
                continue
            services.append(
                {
                    "service": service,
                    "outbox_pending": pending,
                    "outbox_oldest_seconds": None if oldest is None else round(oldest, 1),
                    "dead_letters": dead,
                }
            )
        queues: list[dict[str, Any]] | None
        try:
            depths = self.queues()
        except Exception as exc:
            problems.append({"part": "broker", "detail": describe(exc)})
            queues = []
        else:
            queues = (
                None
                if depths is None
                else [
                    {"queue": queue, "messages": messages, "consumers": consumers}
                    for queue, (messages, consumers) in depths.items()
                ]
            )
        return {"services": services, "queues": queues, "problems": problems}
