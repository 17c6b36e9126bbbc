"""Runs one chaos scenario: a cluster under load, a fault, recovery, drain, audit.

Every scenario runs the real distributed system (each part its own process, real
RabbitMQ and PostgreSQL) with a keeper that restarts any part that dies, as
``orderflow up`` does. The load starts; the scenario injects its fault and clears
it; the load stops; the harness waits until every order is settled and every
outbox and queue is empty, then runs ``orderflow audit`` and checks what the
audit cannot see from the databases alone: every accepted (201) order exists and
settled, and none had to expire (the saga deadline is an hour here, so an order
that expired would be a lost message hidden by compensation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chaos.load import Load, Mix
from tests.integration.cluster import LOCAL, PARTS, Cluster, Servers

REPOSITORY = Path(__file__).resolve().parents[2]
WORK_QUEUES = ("orders", "invoices", "orders.DQ", "invoices.DQ")
CUSTOMERS = [f"chaos-{n:02d}" for n in range(12)]
LOW_CREDIT = CUSTOMERS[:2]  # some orders are rejected for credit


@dataclasses.dataclass(frozen=True)
class Scale:
    """How long and how hard: ``short`` for the integration tier, ``full`` for nox."""

    name: str
    duration: float  # seconds of load
    rate: float  # orders per second
    drain_timeout: float


SCALES = {
    "short": Scale("short", duration=24.0, rate=6.0, drain_timeout=150.0),
    "full": Scale("full", duration=90.0, rate=15.0, drain_timeout=300.0),
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A fault and what must hold after it. ``inject`` runs while the load runs;
    ``prepare`` adjusts the cluster before it starts; ``expect_failures`` lists the
    invariants the audit must report (F9: the broken configurations)."""

    code: str
    title: str
    inject: Callable[[Chaos], None]
    mix: Mix = dataclasses.field(default_factory=Mix)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    prepare: Callable[[Chaos], None] | None = None
    verify: Callable[[Chaos], list[str]] | None = None  # extra checks: problems found
    expect_failures: frozenset[str] = frozenset()
    # a configuration broken on purpose that loses accepted orders (C5): the audit or the
    # per-order checks must see the loss
    expect_loss: bool = False
    drain_timeout: float | None = None


@dataclasses.dataclass
class Outcome:
    """One row of the chaos table."""

    scenario: str
    title: str
    scale: str
    accepted: int
    faults: int
    recovery_s: float | None
    drained: bool
    audit_failed: list[str]
    harness_problems: list[str]
    duplicates_absorbed: int
    dead_lettered: int
    restarts: int
    http: dict[str, int]
    expected_failures: list[str]
    expected_loss: bool = False
    longest_gap_s: float | None = None  # the longest time without a 201 for a placement

    @property
    def passed(self) -> bool:
        """The scenario held: for F9, the audit caught exactly what was broken."""
        if self.expected_loss:
            return bool(self.audit_failed or self.harness_problems)
        if self.expected_failures:
            return set(self.expected_failures) <= set(self.audit_failed)
        return self.drained and not self.audit_failed and not self.harness_problems

    def audit_text(self) -> str:
        return "clean" if not self.audit_failed else "FAIL " + ",".join(self.audit_failed)


class Chaos:
    """The running scenario: cluster, keeper, load and the fault's bookkeeping."""

    def __init__(self, cluster: Cluster, scale: Scale, scenario: Scenario) -> None:
        self.cluster = cluster
        self.scale = scale
        self.scenario = scenario
        self.faults = 0
        self.restarts = 0
        self.started_at = 0.0
        self.cleared_at: dt.datetime | None = None
        self.recovery_s: float | None = None
        self.stopping = threading.Event()
        self.notes: dict[str, Any] = {}
        self._recovery_thread: threading.Thread | None = None

    # -- for the scenarios -------------------------------------------------------

    def at(self, fraction: float) -> None:
        """Wait until ``fraction`` of the load's duration has passed."""
        due = self.started_at + fraction * self.scale.duration
        self.stopping.wait(max(0.0, due - time.monotonic()))

    def injected(self, count: int = 1) -> None:
        self.faults += count

    def cleared(self) -> None:
        """The fault is over: measure how long until every order placed so far settles."""
        self.cleared_at = self.db_now()
        cleared_mono = time.monotonic()

        def measure() -> None:
            while not self.stopping.is_set():
                pending = self.cluster.query(
                    "orders",
                    "SELECT count(*) FROM orders WHERE status = 'pending' AND created_at <= %s",
                    self.cleared_at,
                )[0][0]
                if pending == 0:
                    self.recovery_s = time.monotonic() - cleared_mono
                    return
                time.sleep(0.25)

        self._recovery_thread = threading.Thread(target=measure, daemon=True)
        self._recovery_thread.start()

    def db_now(self) -> dt.datetime:
        """Now as the databases store it (naive UTC), read from PostgreSQL."""
        return self.cluster.query("orders", "SELECT (now() AT TIME ZONE 'utc')")[0][0]

    # -- the run -----------------------------------------------------------------

    def run(self) -> Outcome:
        scenario, cluster = self.scenario, self.cluster
        if scenario.prepare is not None:
            scenario.prepare(self)
        cluster.start()
        for who in LOW_CREDIT:
            cluster.request("PUT", "invoices", f"/accounts/{who}", {"credit_limit": "60.00"})
        keeper = threading.Thread(target=self._keep, daemon=True, name="keeper")
        keeper.start()
        load = Load(cluster, self.scale.rate, scenario.mix, CUSTOMERS)
        self.started_at = time.monotonic()
        load.start()
        try:
            scenario.inject(self)
            if self.cleared_at is None:
                self.cleared()
            self.at(1.0)
        finally:
            record = load.stop()
        drained = self._drain(scenario.drain_timeout or self.scale.drain_timeout)
        if self._recovery_thread is not None:
            self._recovery_thread.join(timeout=5)
        self.stopping.set()
        keeper.join(timeout=5)
        audit = self.audit()
        problems = self._accepted_problems(record.accepted)
        if scenario.verify is not None:
            problems += scenario.verify(self)
        return Outcome(
            scenario=scenario.code,
            title=scenario.title,
            scale=self.scale.name,
            accepted=len(record.accepted),
            faults=self.faults,
            recovery_s=None if self.recovery_s is None else round(self.recovery_s, 1),
            drained=drained,
            audit_failed=[i["code"] for i in audit["invariants"] if not i["ok"]],
            harness_problems=problems,
            duplicates_absorbed=self.duplicates_absorbed(),
            dead_lettered=self.dead_lettered(),
            restarts=self.restarts,
            http=dict(sorted(record.statuses.items())),
            expected_failures=sorted(scenario.expect_failures),
            expected_loss=scenario.expect_loss,
            longest_gap_s=None if (gap := record.longest_gap()) is None else round(gap, 1),
        )

    def _keep(self) -> None:
        """Restart any part that died or was killed (what ``orderflow up`` does)."""
        while not self.stopping.is_set():
            for part in PARTS:
                process = self.cluster.processes.get(part)
                if process is not None and process.poll() is None:
                    continue
                self.cluster.processes.pop(part, None)
                try:
                    self.cluster.start(part)
                    self.restarts += 1
                except AssertionError:
                    pass  # not ready yet (a server is down): the next round tries again
            self.stopping.wait(0.5)

    def _drain(self, timeout: float) -> bool:
        """Wait until no order is pending, no event unpublished and no queue holds work."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._settled():
                return True
            time.sleep(0.5)
        return False

    def _settled(self) -> bool:
        try:
            pending = self.cluster.query(
                "orders", "SELECT count(*) FROM orders WHERE status = 'pending'"
            )[0][0]
            unpublished = sum(
                self.cluster.query(
                    service,
                    f"SELECT count(*) FROM {service}_outbox WHERE published_at IS NULL",
                )[0][0]
                for service in ("orders", "invoices")
            )
            queued = sum(self._depth(queue) for queue in WORK_QUEUES)
        except Exception:  # a server is still coming back
            return False
        return pending == 0 and unpublished == 0 and queued == 0

    def _depth(self, queue: str) -> int:
        try:
            return self.cluster.queue_depth(queue)
        except Exception as exc:
            if "NOT_FOUND" in repr(exc) or "404" in repr(exc):
                return 0
            raise

    # -- measurements --------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """``orderflow audit --json``: every order must be settled now (the drain is over)."""
        # straight to the broker, not through a scenario's proxy
        env = {
            **self.cluster.env,
            "BROKER_URL": self.cluster.servers.broker_url(self.cluster.vhost),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ops.cli",
                "audit",
                "--json",
                "--deadline",
                "0",
                "--outbox-threshold",
                "0",
            ],
            env=env,
            cwd=self.cluster.workdir,
            check=False,
            capture_output=True,
            timeout=120,
        )
        if done.returncode not in (0, 1):
            raise AssertionError(f"audit exited {done.returncode}: {done.stderr.decode()}")
        self.notes["audit"] = json.loads(done.stdout)
        return self.notes["audit"]

    def _accepted_problems(self, accepted: list[str]) -> list[str]:
        rows = self.cluster.query("orders", "SELECT id::text, status, cancel_reason FROM orders")
        orders = {order_id: (status, reason) for order_id, status, reason in rows}
        problems = []
        missing = [order_id for order_id in accepted if order_id not in orders]
        if missing:
            problems.append(f"{len(missing)} accepted orders missing, e.g. {missing[:3]}")
        pending = [o for o in accepted if orders.get(o, ("",))[0] == "pending"]
        if pending:
            problems.append(f"{len(pending)} accepted orders still pending, e.g. {pending[:3]}")
        expired = [o for o, (_, reason) in orders.items() if reason == "expired"]
        if expired:
            problems.append(f"{len(expired)} orders expired (a lost message?)")
        self.notes["cancel_reasons"] = {
            reason: sum(1 for _, r in orders.values() if r == reason)
            for reason in {r for _, r in orders.values() if r}
        }
        return problems

    def duplicates_absorbed(self) -> int:
        return sum(
            self.cluster.log(part).count("outcome=duplicate")
            for part in ("orders-worker", "invoices-worker")
        )

    def dead_lettered(self) -> int:
        return sum(
            self.cluster.query(service, f"SELECT count(*) FROM {service}_dead_letters")[0][0]
            for service in ("orders", "invoices")
        )


def run_scenario(
    scenario: Scenario, scale: Scale, workdir: Path, vhost: str, servers: Servers = LOCAL
) -> Outcome:
    """Build a fresh cluster on ``servers``, run ``scenario`` on it at ``scale``, tear it
    down."""
    cluster = Cluster(
        workdir,
        vhost,
        servers,
        ORDERS_SAGA_TIMEOUT="3600",
        MAX_BACKOFF_MS="5000",
        PYTHONPATH=str(REPOSITORY),  # the parts run elsewhere and import tests.chaos.*
        **scenario.env,
    )
    cluster.create()
    chaos = Chaos(cluster, scale, scenario)
    try:
        outcome = chaos.run()
        if not outcome.passed:
            print(cluster.logs())
            print(json.dumps(chaos.notes, indent=1, default=str)[:6000])
        return outcome
    finally:
        chaos.stopping.set()
        cluster.destroy()


def table(outcomes: list[Outcome]) -> str:
    """The chaos table in Markdown."""
    head = (
        "| scenario | orders accepted | faults injected | recovery (s) | drained | audit "
        "| duplicates absorbed | dead-lettered | restarts | result |\n"
        "|---|---:|---:|---:|---|---|---:|---:|---:|---|\n"
    )
    rows = [
        f"| {o.scenario} {o.title} | {o.accepted} | {o.faults} | "
        f"{'-' if o.recovery_s is None else o.recovery_s} | {'yes' if o.drained else 'no'} | "
        f"{o.audit_text()} | {o.duplicates_absorbed} | {o.dead_lettered} | {o.restarts} | "
        f"{'PASS' if o.passed else 'FAIL'} |"
        for o in outcomes
    ]
    return head + "\n".join(rows) + "\n"


def keep_table(
    name: str, scale: Scale, outcomes: list[Outcome], render: Callable[[list[Outcome]], str]
) -> None:
    """Print the table ``render`` makes of ``outcomes`` and keep it, with every outcome as
    JSON, under ``results/<name>-<scale>.md`` and ``.json``."""
    if not outcomes:
        return
    text = render(outcomes)
    print(f"\n\n{name} ({scale.name}: {scale.duration:g}s of load at {scale.rate:g} orders/s)\n")
    print(text)
    results = Path("results")
    results.mkdir(exist_ok=True)
    (results / f"{name}-{scale.name}.md").write_text(text)
    (results / f"{name}-{scale.name}.json").write_text(
        json.dumps([dataclasses.asdict(o) | {"passed": o.passed} for o in outcomes], indent=1)
    )
