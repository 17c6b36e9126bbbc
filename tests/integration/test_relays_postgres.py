"""Several relays on one PostgreSQL outbox: each row published once, none left behind.

Scaling the relays out is adding processes (docs/scaling.md); this is the property that
makes it safe: ``FOR UPDATE SKIP LOCKED`` gives each relay a batch no other relay holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import peewee
import pytest

from ops.shared.persistence import outbox
from ops.shared.persistence.database import open_database, unit_of_work
from ops.shared.persistence.outbox import OutboxRecord
from ops.shared.persistence.relay import Relay

from .cluster import throwaway_database

RELAYS = 4
ROWS = 2000
BATCH = 50

outbox_database = peewee.DatabaseProxy()


class Outbox(OutboxRecord):
    """An outbox table of this module's own."""

    class Meta:
        database = outbox_database
        table_name = "relays_outbox"


@pytest.fixture
def outbox_db(servers: str) -> Iterator[peewee.DatabaseProxy]:
    with throwaway_database("orderflow_test_relays") as url:
        postgres = open_database(url)
        outbox_database.initialize(postgres)
        postgres.create_tables([Outbox])
        yield outbox_database
        postgres.close()


def record(count: int) -> None:
    with unit_of_work(outbox_database):
        for index in range(count):
            outbox.record(Outbox, "OrderPlaced", f"order-{index}", {"n": index})


def test_relays_running_at_once_each_publish_a_different_batch_and_every_row_once(
    outbox_db,
) -> None:
    # Given an outbox of 2,000 rows and four relays
    record(ROWS)
    published: dict[int, list[int]] = {relay: [] for relay in range(RELAYS)}
    # every relay's first batch is held open until all four hold one at the same time:
    # a relay that waited for another's row locks (or no lock at all) breaks the barrier
    # or publishes a row twice
    all_hold_a_batch = threading.Barrier(RELAYS, timeout=20)

    def publisher(relay: int):  # type: ignore[no-untyped-def]
        def publish_batch(rows: list[OutboxRecord]) -> list[int]:
            if not published[relay]:
                all_hold_a_batch.wait()
            published[relay].extend(row.seq for row in rows)
            return [row.seq for row in rows]

        return publish_batch

    errors: list[BaseException] = []

    def run(relay: int) -> None:
        worker = Relay(f"relay-{relay}", Outbox, publish_batch=publisher(relay), batch=BATCH)
        try:
            while worker.run_once():
                pass
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            outbox_database.close()

    # When they run at once until none finds a row
    threads = [threading.Thread(target=run, args=(relay,)) for relay in range(RELAYS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a relay did not finish"
    assert errors == []

    # Then every relay published, no row twice, and every row was published and marked
    everything = [seq for seqs in published.values() for seq in seqs]
    assert all(published.values()), "a relay never got a batch"
    assert len(everything) == len(set(everything)) == ROWS
    assert Outbox.select().where(Outbox.published_at.is_null()).count() == 0
    # and each relay's own batches went out in seq order
    assert all(seqs == sorted(seqs) for seqs in published.values())
