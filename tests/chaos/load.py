"""A steady load of orders, payments and cancellations against a running cluster.

Open loop: order ``i`` is sent at ``start + i / rate`` whatever happened to the
ones before, so a fault shows as errors and latency, not as a quieter client.
Each order is placed under an Idempotency-Key and retried on a connection error
or a 5xx, as a careful client would; only a 201 counts as accepted.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.integration.cluster import Cluster

RETRYABLE = {0, 500, 502, 503, 504}


@dataclass(frozen=True)
class Mix:
    """What follows a placement: shares of immediate cancels (racing issuance), payments
    and late cancels; the rest are left confirmed."""

    race_cancel: float = 0.10
    pay: float = 0.35
    late_cancel: float = 0.10


@dataclass
class LoadRecord:
    accepted: list[str] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)  # time.monotonic() of each 201
    statuses: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def longest_gap(self) -> float | None:
        """The longest time between two accepted orders (how long placing was down)."""
        times = sorted(self.accepted_at)
        return max((b - a for a, b in itertools.pairwise(times)), default=None)

    def note(self, what: str, status: int) -> None:
        with self.lock:
            self.statuses[f"{what} {status}"] += 1


class Load:
    """Runs the load in the background; :meth:`stop` ends it and waits for follow-ups."""

    def __init__(
        self, cluster: Cluster, rate: float, mix: Mix, customers: list[str], seed: int = 5
    ) -> None:
        self.cluster = cluster
        self.rate = rate
        self.mix = mix
        self.customers = customers
        self.random = random.Random(seed)
        self.record = LoadRecord()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(48, thread_name_prefix="load")
        self.thread = threading.Thread(target=self._run, name="load-clock", daemon=True)

    def start(self) -> Load:
        self.thread.start()
        return self

    def stop(self) -> LoadRecord:
        self.stopping.set()
        self.thread.join()
        self.pool.shutdown(wait=True)
        return self.record

    def _run(self) -> None:
        start = time.monotonic()
        index = 0
        while not self.stopping.is_set():
            due = start + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
                continue
            customer = self.customers[index % len(self.customers)]
            roll = self.random.random()
            price = f"{self.random.randint(1, 40)}.{self.random.randint(0, 99):02d}"
            self.pool.submit(self._order, customer, price, roll)
            index += 1

    # -- one order's life --------------------------------------------------------

    def _order(self, customer: str, price: str, roll: float) -> None:
        order = self._place(customer, price)
        if order is None:
            return
        mix = self.mix
        if roll < mix.race_cancel:
            self._cancel(customer, order["id"], "race-cancel")
        elif roll < mix.race_cancel + mix.pay:
            if (confirmed := self._confirmed(order["id"])) is not None:
                self._pay(customer, confirmed)
        elif (
            roll < mix.race_cancel + mix.pay + mix.late_cancel
            and self._confirmed(order["id"]) is not None
        ):
            self._cancel(customer, order["id"], "late-cancel")

    def _place(self, customer: str, price: str) -> dict | None:
        key = str(uuid.uuid4())
        for attempt in range(4):
            status, body = self.cluster.place_order(customer, price, key=key)
            self.record.note("place", status)
            if status == 201:
                with self.record.lock:
                    self.record.accepted.append(body["id"])
                    self.record.accepted_at.append(time.monotonic())
                return body
            if status not in RETRYABLE or (self.stopping.is_set() and attempt >= 1):
                return None
            time.sleep(0.5 * 2**attempt)
        return None

    def _confirmed(self, order_id: str, timeout: float = 10.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, order, _ = self.cluster.request("GET", "orders", f"/orders/{order_id}")
            if status == 200 and order["status"] == "confirmed":
                return order
            if status == 200 and order["status"] != "pending":
                return None
            time.sleep(0.3)
        return None

    def _cancel(self, customer: str, order_id: str, what: str) -> None:
        status, _, _ = self.cluster.request(
            "POST", "orders", f"/orders/{order_id}/cancel", token=self.cluster.token(customer)
        )
        self.record.note(what, status)
        with self.record.lock:
            self.record.actions[what] += 1

    def _pay(self, customer: str, order: dict) -> None:
        status, _, _ = self.cluster.request(
            "POST",
            "invoices",
            f"/invoices/{order['invoice_id']}/payments",
            {"amount": order["total"]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            token=self.cluster.token(customer),
        )
        self.record.note("pay", status)
        with self.record.lock:
            self.record.actions["pay"] += 1
