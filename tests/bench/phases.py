"""The phases of one measured run of one system: warm-up, sustained load, latency at a rate.

- **Sustained** (closed loop): ``--orders`` orders at ``--concurrency``, as fast as
  the system accepts them. It gives the HTTP accept rate and latency, the rate
  at which run orders reached ``confirmed`` *while the load ran* (the sustained
  end-to-end rate: accepting and confirming share the machine), the backlog
  when the load ended, the end-to-end rate from first accept to last
  confirmation, and the CPU seconds per order of each part of the system over
  the load and its drain.
- **Latency** (open loop): a fixed arrival rate, a fraction of the sustained
  rate just measured, for ``--latency-seconds``. Accept -> confirmed latency of
  those orders comes from the database timestamps; HTTP latency is measured
  from each order's scheduled send time (no coordinated omission).
- **Profiled** (closed loop, last, with ``--profile``): ``--profile-orders`` more
  orders while py-spy samples every process; no reported figure comes from it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from tests.bench import measure, procs
from tests.bench.client import LoadResult, Sample, run_load
from tests.bench.openloop import orders_for, run_open_loop
from tests.bench.systems import HOST, Orders, System


class PhaseError(RuntimeError):
    """A phase could not produce figures (nothing accepted, orders stuck)."""


def accepted_ids(load: LoadResult) -> list[str]:
    """Ids of the orders the API accepted with 201."""
    return [sample.order_id for sample in load.samples if sample.order_id is not None]


def http_figures(load: LoadResult) -> dict[str, Any]:
    """Accept rate, latency and errors of one load phase."""
    outcomes = Counter(_outcome_key(sample) for sample in load.samples)
    examples: dict[str, str] = {}
    for sample in load.samples:
        key = _outcome_key(sample)
        if key != "201" and key not in examples:
            examples[key] = sample.error or ""
    accepted = outcomes.get("201", 0)
    answered = [sample.latency for sample in load.samples if sample.status is not None]
    return {
        "requests": len(load.samples),
        "accepted_201": accepted,
        "window_s": round(load.seconds, 3),
        "accept_rate_per_s": round(accepted / load.seconds, 2) if load.seconds > 0 else None,
        "latency_ms": measure.summarize_ms(answered),
        "errors": {key: count for key, count in sorted(outcomes.items()) if key != "201"},
        "error_examples": examples,
    }


def _outcome_key(sample: Sample) -> str:
    return str(sample.status) if sample.status is not None else f"exception:{sample.error}"


def _utc(timestamp: float) -> dt.datetime:
    """A POSIX timestamp as naive UTC, like the systems' ``created_at``/``settled_at``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None)


def settle(orders: Orders, ids: list[str], timeout: float, since: float) -> measure.Drain:
    """Wait until none of ``ids`` is pending; raises :class:`PhaseError` past ``timeout``."""
    drain = _wait(orders, ids, timeout, since)
    if not drain.drained:
        raise PhaseError(f"{drain.samples[-1][1]} orders still pending after {timeout:.0f}s")
    return drain


def _wait(orders: Orders, ids: list[str], timeout: float, since: float) -> measure.Drain:
    return measure.wait_drained(
        lambda: orders.pending_count(ids) if ids else 0, timeout, since, interval=0.25
    )


def warm_up(sut: System, orders: Orders, args: Any, prefix: str) -> dict[str, Any]:
    """``--warmup`` orders at ``--concurrency``, then wait until they all settled."""
    return _burst(sut, orders, args, prefix, first=0, count=args.warmup)


def profiled(sut: System, orders: Orders, args: Any, prefix: str, first: int) -> dict[str, Any]:
    """``--profile-orders`` orders at ``--concurrency`` while py-spy samples, then wait
    until they settled: the run's profile, from a burst that no reported figure counts
    (sampling costs CPU, more for a system of more processes)."""
    return _burst(sut, orders, args, prefix, first=first, count=args.profile_orders)


def _burst(
    sut: System, orders: Orders, args: Any, prefix: str, *, first: int, count: int
) -> dict[str, Any]:
    load = run_load(
        HOST,
        sut.orders_port,
        first=first,
        count=count,
        concurrency=args.concurrency,
        key_prefix=prefix,
        tokens=args.tokens,
        timeout=args.request_timeout,
    )
    ids = accepted_ids(load)
    if not ids:
        examples = http_figures(load)["error_examples"]
        raise PhaseError(f"no order of a burst was accepted: {examples}")
    drain = settle(orders, ids, args.drain_timeout, load.finished)
    return {"orders": count, "accepted": len(ids), "settle_s": round(drain.seconds, 2)}


def sustained(sut: System, orders: Orders, args: Any, prefix: str, group: int) -> dict[str, Any]:
    """The closed-loop burst and its drain (see the module docstring)."""
    before = procs.cpu_seconds(group)
    load = run_load(
        HOST,
        sut.orders_port,
        first=args.warmup,
        count=args.orders,
        concurrency=args.concurrency,
        key_prefix=prefix,
        tokens=args.tokens,
        timeout=args.request_timeout,
    )
    after_load = procs.cpu_seconds(group)
    ids = accepted_ids(load)
    if not ids:
        raise PhaseError(f"no order was accepted: {http_figures(load)['error_examples']}")
    backlog = orders.pending_count(ids)
    drain = settle(orders, ids, args.drain_timeout, load.finished)
    after_drain = procs.cpu_seconds(group)
    rows = orders.order_rows(ids)
    saga = measure.saga_figures(rows)
    load_end = _utc(load.wall_finished)
    during = sum(1 for r in rows if r.status == "confirmed" and r.settled_at <= load_end)  # type: ignore[operator]
    confirmed = saga["confirmed"] or 1
    cpu = procs.cpu_delta(before, after_drain, load.seconds + drain.seconds)
    return {
        "http": http_figures(load),
        "confirmed_during_load": during,
        "sustained_confirmed_per_s": round(during / load.seconds, 2),
        "backlog_at_load_end": backlog,
        "drain_s": round(drain.seconds, 2),
        "end_to_end_confirmed_per_s": saga["throughput_confirmed_per_s"],
        "by_status": saga["by_status"],
        "accept_to_confirmed_ms": saga["accept_to_confirmed_ms"],
        "cpu_ms_per_order": {
            label: round(1000 * value["cpu_s"] / confirmed, 3) for label, value in cpu.items()
        },
        "cores_during_load": {
            label: value["cores"]
            for label, value in procs.cpu_delta(before, after_load, load.seconds).items()
        },
    }


def latency(
    sut: System, orders: Orders, args: Any, prefix: str, first: int, rate: float
) -> dict[str, Any]:
    """Open-loop load at ``rate`` for ``--latency-seconds``, then its accept -> confirmed."""
    load = run_open_loop(
        HOST,
        sut.orders_port,
        rate=rate,
        count=orders_for(rate, args.latency_seconds),
        first=first,
        key_prefix=prefix,
        tokens=args.tokens,
        timeout=args.request_timeout,
    )
    ids = accepted_ids(load)
    drain = _wait(orders, ids, args.drain_timeout, load.finished)
    saga = measure.saga_figures(orders.order_rows(ids))
    return {
        "offered_per_s": round(rate, 1),
        "achieved_per_s": round(len(load.samples) / load.seconds, 1) if load.seconds else None,
        "late_starts": load.late_starts,
        "max_start_lag_ms": round(1000 * (load.max_start_lag or 0.0), 1),
        "http": http_figures(load),
        "accept_to_confirmed_ms": saga["accept_to_confirmed_ms"],
        "settled_after_load_s": round(drain.seconds, 2),
        "drained": drain.drained,
        "orders": len(load.samples),
    }
