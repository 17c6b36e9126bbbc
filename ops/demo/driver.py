"""The demo's run from start to summary, against services that are ready."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ops.demo.checks import consistency_checks, expected_refusals
from ops.demo.client import Endpoints, call, describe
from ops.demo.identity import Tokens
from ops.demo.record import new_run, timed
from ops.demo.report import print_summary, summary
from ops.demo.scenario import (
    choose_actions,
    pay_and_cancel,
    place_orders,
    set_credit_limits,
    wait_for_effects,
    wait_until_settled,
)
from ops.demo.state import read_final_state


def tokens_refused(endpoints: Endpoints, tokens: Tokens) -> str | None:
    """Why the services do not accept the demo's operator token (say, another key), or None
    if both do."""
    for base, path in ((endpoints.orders, "/orders"), (endpoints.invoices, "/invoices")):
        reply = call("GET", f"{base}{path}?limit=1", token=tokens.operator)
        if reply.status != 200:
            return f"GET {base}{path} with the demo's operator token: {describe(reply)}"
    return None


def run_scenario(
    endpoints: Endpoints, tokens: Tokens, args: argparse.Namespace, mode: str, started: bool
) -> int:
    """Drive the whole scenario, print the summary; 0 only if no check failed. ``started``
    says the demo started the system itself (``mode`` names how it runs)."""
    if refused := tokens_refused(endpoints, tokens):
        print(
            f"orderflow demo: {refused}; does the system use the same JWT key "
            "(ORDERFLOW_JWT_SECRET, ORDERFLOW_JWT_PUBLIC_KEY, or ORDERFLOW_DATA_DIR's "
            "dev-jwt-secret)?",
            file=sys.stderr,
        )
        return 1
    started_at = time.monotonic()
    run = new_run(endpoints, tokens, args.customers)
    print(f"run {run.run_id}: placing {args.orders} orders ...", flush=True)
    with timed(run, "placing orders"):
        set_credit_limits(run)
        place_orders(run, args.orders)
    print("waiting until no order is pending ...", flush=True)
    with timed(run, "sagas settling"):
        orders = wait_until_settled(run, args.timeout) or []
    to_pay, to_cancel, untouched = choose_actions(orders)
    print(f"paying {len(to_pay)} and cancelling {len(to_cancel)} confirmed orders ...", flush=True)
    with timed(run, "paying and cancelling"):
        pay_and_cancel(run, to_pay, to_cancel)
    cancelled = run.cancelled_ids + [o["id"] for o in orders if o["status"] == "cancelled"]
    with timed(run, "payments and voids applied"):
        if not wait_for_effects(run, cancelled, args.timeout):
            print(f"  not all applied after {args.timeout:g} s; going on to report it")
    expected_refusals(run, untouched)
    state = read_final_state(run)
    if state is None:
        print("orderflow demo: could not read the run's orders back", file=sys.stderr)
        return 1
    run.timings["total"] = time.monotonic() - started_at
    checks = consistency_checks(run, state, started)
    if getattr(args, "json", False):  # demo --json: the document alone on the real stdout
        stream = getattr(args, "summary_stream", None) or sys.stdout
        print(json.dumps(summary(run, state, checks, mode), indent=2), file=stream, flush=True)
    else:
        print_summary(run, state, checks, mode)
    return 0 if all(not check.offenders for check in checks) else 1
