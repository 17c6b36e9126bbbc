"""The scenarios F1-F9: each fault, injected while the load runs, and what must hold."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pika

from tests.chaos.harness import Chaos, Scenario
from tests.chaos.load import Mix
from tests.chaos.proxy import Proxy
from tests.integration.cluster import AMQP_BASE, broker_url

# -- helpers -----------------------------------------------------------------------


def repeatedly(chaos: Chaos, every: float, action, start: float = 0.2, end: float = 0.7) -> None:
    """Call ``action(i)`` every ``every`` seconds between two fractions of the load."""
    chaos.at(start)
    stop_at = chaos.started_at + end * chaos.scale.duration
    index = 0
    while time.monotonic() < stop_at:
        action(index)
        chaos.injected()
        index += 1
        chaos.stopping.wait(every)
    chaos.cleared()


def run(*argv: str, timeout: float = 120) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=timeout)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def rabbitmq_up() -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(f"{AMQP_BASE}/%2F")).close()
        return True
    except Exception:
        return False


def postgres_cluster() -> tuple[str, str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    return version, "main"


def published_messages(chaos: Chaos, limit: int) -> list[tuple[str, str, dict]]:
    """Recently published outbox events of both services: (type, id, payload)."""
    rows = []
    for service in ("orders", "invoices"):
        rows += chaos.cluster.query(
            service,
            f"SELECT event_type, event_id::text, payload FROM {service}_outbox "
            "WHERE published_at IS NOT NULL ORDER BY seq DESC LIMIT %s",
            limit,
        )
    return [(kind, event_id, json.loads(payload)) for kind, event_id, payload in rows]


def _enqueue_all(broker, messages) -> None:  # type: ignore[no-untyped-def]
    for message in messages:
        broker.enqueue(message)


def deliver_again(chaos: Chaos, rounds: int, rng: random.Random) -> int:
    """Publish copies of real, already delivered messages: 2-10 copies at once each."""
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from actors import catalogue

    broker = RabbitmqBroker(url=broker_url(chaos.cluster.vhost), confirm_delivery=True)
    copies = 0
    try:
        for _ in range(rounds):
            if chaos.stopping.is_set():
                break
            for kind, event_id, payload in rng.sample(
                pool := published_messages(chaos, 40), min(4, len(pool))
            ):
                messages: list[dramatiq.Message] = catalogue.messages_for(kind, event_id, payload)
                times = rng.randint(2, 10)
                threads = [
                    threading.Thread(target=_enqueue_all, args=(broker, messages))
                    for _ in range(times)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                copies += times * len(messages)
            chaos.stopping.wait(1.0)
    finally:
        broker.close()
    return copies


# -- F1 worker kills ---------------------------------------------------------------


def kill_workers(chaos: Chaos) -> None:
    parts = ("invoices-worker", "orders-worker")

    def kill(index: int) -> None:
        part = parts[index % 2]
        if part in chaos.cluster.processes:
            chaos.cluster.kill(part)  # the keeper restarts it

    repeatedly(chaos, 4.0, kill)


# -- F2 relay kills between publish and mark -----------------------------------------


def kill_relays(chaos: Chaos) -> None:
    parts = ("orders-relay", "invoices-relay")

    def kill(index: int) -> None:
        part = parts[index % 2]
        if part in chaos.cluster.processes:
            chaos.cluster.kill(part)

    repeatedly(chaos, 3.0, kill)


def relay_duplicates(chaos: Chaos) -> list[str]:
    """Killed relays republish what they had not marked: visible as events published
    more than once (publish_attempts > 1) or as duplicates the consumers absorbed."""
    chaos.notes["republished"] = sum(
        chaos.cluster.query(
            service, f"SELECT count(*) FROM {service}_outbox WHERE publish_attempts > 1"
        )[0][0]
        for service in ("orders", "invoices")
    )
    return []


# -- F3 RabbitMQ stopped, then killed --------------------------------------------------


def restart_rabbitmq(chaos: Chaos) -> None:
    chaos.at(0.2)
    run("rabbitmqctl", "stop_app")
    chaos.injected()
    chaos.stopping.wait(6)
    run("rabbitmqctl", "start_app")
    wait_for(rabbitmq_up, 120, "RabbitMQ to accept connections")
    chaos.at(0.45)
    pid = subprocess.run(
        ["rabbitmqctl", "eval", "list_to_integer(os:getpid())."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    run("kill", "-9", pid)
    chaos.injected()
    wait_for(lambda: not rabbitmq_up(), 30, "RabbitMQ to die")
    chaos.stopping.wait(3)
    run("rabbitmq-server", "-detached")
    wait_for(rabbitmq_up, 180, "RabbitMQ to accept connections after the restart")
    chaos.cleared()


# -- F4 PostgreSQL restarted -------------------------------------------------------------


def restart_postgres(chaos: Chaos) -> None:
    version, name = postgres_cluster()
    for fraction, mode in ((0.2, "fast"), (0.45, "immediate")):
        chaos.at(fraction)
        run("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", mode)
        chaos.injected()
    chaos.cleared()


# -- F5 network delay, blackhole and cut between the services and RabbitMQ ---------------


def proxied(chaos: Chaos) -> None:
    host, port = "127.0.0.1", 5672
    proxy = Proxy((host, port))
    chaos.notes["proxy"] = proxy
    chaos.cluster.env["BROKER_URL"] = (
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/{chaos.cluster.vhost.replace('/', '%2F')}"
    )


def network_faults(chaos: Chaos) -> None:
    """Delay, then a silent network (no reset when it ends: every client must time out on
    its own: pika heartbeats every 15 s, socket timeouts 5 s), then a cut with resets."""
    proxy: Proxy = chaos.notes["proxy"]
    silence = 15.0 if chaos.scale.name == "short" else 45.0
    try:
        chaos.at(0.1)
        proxy.set_mode("delay", delay=0.05)
        chaos.injected()
        chaos.stopping.wait(6)
        chaos.at(0.25)
        proxy.set_mode("blackhole")
        chaos.injected()
        chaos.stopping.wait(silence)
        proxy.set_mode("pass", reset=False)
        chaos.at(0.7)
        proxy.set_mode("cut")
        chaos.injected()
        chaos.stopping.wait(6)
    finally:
        proxy.set_mode("pass")
    chaos.cleared()


def publishes_were_bounded(chaos: Chaos) -> list[str]:
    """The silence outlasted the publish timeout: some publish must have been cut
    (``actors.rabbitmq``) instead of waiting for its confirm forever."""
    cuts = sum(
        chaos.cluster.log(part).count("waited 10s for its confirm")
        for part in ("orders-relay", "invoices-relay")
    )
    chaos.notes["publishes_cut"] = cuts
    return [] if cuts else ["no publish was cut during the silence"]


# -- F6 the same message delivered 2-10 times at once -------------------------------------


def duplicate_deliveries(chaos: Chaos) -> None:
    chaos.at(0.2)
    rounds = max(4, int(chaos.scale.duration * 0.5 / 2))
    chaos.notes["copies"] = deliver_again(chaos, rounds, random.Random(6))
    chaos.injected(chaos.notes["copies"])
    chaos.cleared()


def duplicates_were_absorbed(chaos: Chaos) -> list[str]:
    if chaos.duplicates_absorbed() == 0:
        return ["no duplicate was absorbed: the copies did not arrive?"]
    return []


# -- F7 poison messages -----------------------------------------------------------------


def with_crasher(chaos: Chaos) -> None:
    chaos.cluster.worker_modules["invoices-worker"] = ["tests.chaos.crasher"]


def poison(chaos: Chaos) -> None:
    chaos.at(0.2)
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(chaos.cluster.vhost)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        persistent = pika.BasicProperties(delivery_mode=2)
        for body in (b"\xff\xfe not a message", b'{"actor_name": 1}'):
            channel.basic_publish("", "invoices", body, persistent)
        for queue in ("orders", "invoices"):
            unknown = {
                "queue_name": queue,
                "actor_name": "no_such_step",
                "args": [],
                "kwargs": {"order_id": str(uuid.uuid4()), "dedupe_key": str(uuid.uuid4())},
                "options": {},
                "message_id": str(uuid.uuid4()),
                "message_timestamp": int(time.time() * 1000),
            }
            channel.basic_publish("", queue, json.dumps(unknown).encode(), persistent)
    finally:
        connection.close()
    chaos.injected(4)
    crashing = []
    for _ in range(2):
        status, order = chaos.cluster.place_order(f"crash-{uuid.uuid4().hex[:6]}", "3.00")
        assert status == 201, status
        crashing.append(order["id"])
    chaos.injected(2)
    chaos.notes["crashing"] = crashing
    chaos.cleared()


def poison_was_contained(chaos: Chaos) -> list[str]:
    problems = []
    letters = chaos.cluster.query(
        "invoices", "SELECT actor_name, order_id, attempts FROM invoices_dead_letters"
    ) + chaos.cluster.query(
        "orders", "SELECT actor_name, order_id, attempts FROM orders_dead_letters"
    )
    actors = [actor for actor, _, _ in letters]
    if actors.count("<undecodable>") != 2:
        problems.append(f"undecodable bodies recorded: {actors.count('<undecodable>')} of 2")
    if actors.count("no_such_step") != 2:
        problems.append(f"unknown-actor messages recorded: {actors.count('no_such_step')} of 2")
    for order_id in chaos.notes.get("crashing", []):
        status, reason = chaos.cluster.query(
            "orders", "SELECT status, cancel_reason FROM orders WHERE id = %s", order_id
        )[0]
        if (status, reason) != ("cancelled", "invoice_failed"):
            problems.append(f"crash-loop order {order_id} ended {status}/{reason}")
        crashed = [a for actor, o, a in letters if o == order_id and actor == "issue_invoice"]
        if not crashed:
            problems.append(f"crash-loop order {order_id} has no dead letter")
    for queue in ("orders.XQ", "invoices.XQ"):
        chaos.notes[queue] = chaos.cluster.queue_depth(queue)
    return problems


# -- F8 cancellations racing issuance ------------------------------------------------------


def race_only(chaos: Chaos) -> None:
    chaos.at(0.0)
    chaos.cleared()


def races_resolved(chaos: Chaos) -> list[str]:
    """A cancelled order never keeps a live invoice (the audit's I3), and the race had both
    winners: some cancels overtook issuance (tombstones), some voided an issued invoice."""
    tombstones = chaos.cluster.query("invoices", "SELECT count(*) FROM cancelled_orders")[0][0]
    voided = chaos.cluster.query("invoices", "SELECT count(*) FROM invoices WHERE status = 'void'")[
        0
    ][0]
    chaos.notes["race"] = {"tombstones": tombstones, "voided": voided}
    chaos.faults = chaos.cluster.query(
        "orders", "SELECT count(*) FROM orders WHERE cancel_reason = 'customer_cancelled'"
    )[0][0]
    return [] if voided else ["no cancellation reached an issued invoice"]


# -- F9 broken on purpose --------------------------------------------------------------------


def unsafe_relay(chaos: Chaos) -> None:
    proxied(chaos)
    chaos.cluster.commands["orders-relay"] = [
        sys.executable,
        "-m",
        "tests.chaos.unsafe",
        "relay",
        "orders",
    ]


def swallow_publishes(chaos: Chaos) -> None:
    proxy: Proxy = chaos.notes["proxy"]
    chaos.at(0.3)
    proxy.set_mode("blackhole")
    chaos.injected()
    chaos.stopping.wait(8)
    proxy.set_mode("pass")
    chaos.cleared()


def unsafe_worker(chaos: Chaos) -> None:
    chaos.cluster.worker_modules["invoices-worker"] = ["tests.chaos.unsafe"]
    (index,) = chaos.cluster.query(
        "invoices",
        "SELECT indexname FROM pg_indexes WHERE tablename = 'invoices' "
        "AND indexdef LIKE 'CREATE UNIQUE INDEX %% (order_id)'",
    )[0]
    chaos.cluster.execute("invoices", f'DROP INDEX "{index}"')


SCENARIOS = [
    Scenario("F1", "kill -9 workers", kill_workers),
    Scenario("F2", "kill -9 relays", kill_relays, verify=relay_duplicates),
    Scenario("F3", "RabbitMQ stopped, then killed", restart_rabbitmq),
    Scenario("F4", "PostgreSQL restarted (fast, immediate)", restart_postgres),
    Scenario(
        "F5",
        "network delay, silence, cut",
        network_faults,
        prepare=proxied,
        verify=publishes_were_bounded,
    ),
    Scenario(
        "F6", "2-10 copies of messages", duplicate_deliveries, verify=duplicates_were_absorbed
    ),
    Scenario(
        "F7",
        "poison: undecodable, unknown actor, crash loop",
        poison,
        prepare=with_crasher,
        verify=poison_was_contained,
        env={"MAX_REDELIVERIES": "2"},
    ),
    Scenario(
        "F8",
        "cancel racing issuance",
        race_only,
        mix=Mix(race_cancel=0.5, pay=0.2, late_cancel=0.1),
        verify=races_resolved,
    ),
    Scenario(
        "F9a",
        "BROKEN: confirms off + blackhole",
        swallow_publishes,
        prepare=unsafe_relay,
        expect_failures=frozenset({"I1"}),
        drain_timeout=30.0,
    ),
    Scenario(
        "F9b",
        "BROKEN: no dedupe + copies",
        duplicate_deliveries,
        prepare=unsafe_worker,
        expect_failures=frozenset({"I2"}),
        drain_timeout=60.0,
    ),
]
BY_CODE = {scenario.code: scenario for scenario in SCENARIOS}
