"""The demo's summary: counts, latency, replays, timings and checks as tables."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ops.demo.checks import replay_problem
from ops.demo.client import Item
from ops.demo.record import Run
from ops.demo.scenario import LOW_CREDIT_LIMIT
from ops.demo.state import Check, FinalState

SHOWN_OFFENDERS = 5
ORDER_STATUSES = ("pending", "confirmed", "paid", "cancelled")
INVOICE_STATUSES = ("issued", "paid", "void")


def order_rows(orders: list[Item]) -> list[tuple[str, int]]:
    """Orders per status (every known status, even at 0), then cancellations per reason."""
    statuses = Counter(order["status"] for order in orders)
    reasons = Counter(o["cancel_reason"] or "?" for o in orders if o["status"] == "cancelled")
    rows = [(status, statuses.pop(status, 0)) for status in ORDER_STATUSES]
    rows += sorted(statuses.items())  # a status this demo does not know about
    return rows + [(f"  {reason}", count) for reason, count in sorted(reasons.items())]


def invoice_rows(state: FinalState) -> list[tuple[str, int]]:
    """Invoices of the run per status (every known status, even at 0)."""
    statuses = Counter(invoice["status"] for invoice in state.all_invoices())
    rows = [(status, statuses.pop(status, 0)) for status in INVOICE_STATUSES]
    return rows + sorted(statuses.items())


def percentile(values: list[float], pct: int) -> float | None:
    """The ``pct``-th percentile of ``values`` (None if there are none)."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def print_table(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """A titled block of label / right-aligned value rows."""
    print(title)
    for label, value in rows:
        print(f"  {label:<34}{value!s:>12}")


def print_checks(checks: list[Check]) -> None:
    """The checks table (a skipped check shows why instead of its offenders), with the
    first offenders of every failed check below it."""
    print(f"{'Consistency checks':<52}{'result':>8}{'offenders':>11}")
    for check in checks:
        if check.skipped is not None and not check.offenders:
            print(f"  {check.name:<50}{'SKIP':>8} ({check.skipped})")
            continue
        result = "FAIL" if check.offenders else "PASS"
        print(f"  {check.name:<50}{result:>8}{len(check.offenders):>11}")
    for check in checks:
        if check.offenders:
            print(f"FAIL {check.name}:")
            for offender in check.offenders[:SHOWN_OFFENDERS]:
                print(f"    {offender}")
            if len(check.offenders) > SHOWN_OFFENDERS:
                print(f"    ... and {len(check.offenders) - SHOWN_OFFENDERS} more")


def summary(run: Run, state: FinalState, checks: list[Check], mode: str) -> dict[str, Any]:
    """What :func:`print_summary` prints, as one JSON-ready document (``demo --json``)."""
    replays = [p for p in run.placements if p.replay is not None]
    orders = Counter(order["status"] for order in state.orders)
    reasons = Counter(o["cancel_reason"] or "?" for o in state.orders if o["status"] == "cancelled")
    return {
        "run_id": run.run_id,
        "mode": mode,
        "orders_placed": len(run.placements),
        "customers": len(run.customers),
        "low_credit_customers": len(run.low_credit),
        "low_credit_limit": str(LOW_CREDIT_LIMIT),
        "orders_by_status": {status: orders.get(status, 0) for status in ORDER_STATUSES}
        | dict(orders),
        "cancel_reasons": dict(sorted(reasons.items())),
        "invoices_by_status": dict(invoice_rows(state)),
        "saga_latency_ms": {
            "orders": len(run.latencies_ms),
            "p50": percentile(run.latencies_ms, 50),
            "p95": percentile(run.latencies_ms, 95),
        },
        "idempotent_replays": {
            "verified": sum(replay_problem(p) is None for p in replays),
            "of": len(replays),
        },
        "timings_s": dict(run.timings),
        "checks": [
            {
                "name": check.name,
                "result": "FAIL"
                if check.offenders
                else ("SKIP" if check.skipped is not None else "PASS"),
                "offenders": check.offenders,
                "skipped": check.skipped,
            }
            for check in checks
        ],
        "result": "PASS" if all(not c.offenders for c in checks) else "FAIL",
    }


def print_summary(run: Run, state: FinalState, checks: list[Check], mode: str) -> None:
    """The readable end of the demo: counts, latency, replays, timings and checks."""
    p50, p95 = (percentile(run.latencies_ms, pct) for pct in (50, 95))
    replays = [p for p in run.placements if p.replay is not None]
    verified = sum(replay_problem(p) is None for p in replays)
    print(
        f"\n== orderflow demo, run {run.run_id} ({mode}): {len(run.placements)} orders from "
        f"{len(run.customers)} customers, {len(run.low_credit)} with credit limit "
        f"{LOW_CREDIT_LIMIT}"
    )
    print_table("Orders by status", order_rows(state.orders))
    print_table("Invoices by status", invoice_rows(state))
    print_table(
        f"Saga latency (created -> settled, {len(run.latencies_ms)} orders)",
        [
            (name, "n/a" if value is None else f"{value:.1f} ms")
            for name, value in (("p50", p50), ("p95", p95))
        ],
    )
    print_table("Idempotent replays", [("verified", f"{verified} of {len(replays)}")])
    print_table("Timings", [(phase, f"{seconds:.1f} s") for phase, seconds in run.timings.items()])
    print_checks(checks)
    print(f"== {'PASS' if all(not c.offenders for c in checks) else 'FAIL'}", flush=True)
