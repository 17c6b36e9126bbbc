"""The benchmark's history statements (tests/bench/history_sql.py) and batch-size figures
(tests/bench/batches.py, tests/bench/summary.py); no database needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from invoices.domain import NUMBER_PREFIX, format_number
from tests.bench import batches, history_sql, summary
from tests.bench.history import Index
from tests.bench.history_sql import (
    ACCOUNTS,
    ORDERS_OUTBOX,
    PLANS,
    Insert,
    SchemaMismatch,
    insert_sql,
)

OUTBOX_V1 = {"seq", "event_id", "event_type", "aggregate_id", "payload", "created_at"}


def test_an_outbox_insert_names_only_the_columns_the_table_has() -> None:
    # Given an outbox that kept published_at but lost publish_attempts and trace_context
    existing = OUTBOX_V1 | {"published_at"}

    # When its statement is built
    statement = insert_sql(ORDERS_OUTBOX, existing, {"event_id", "payload"})  # seq has a default

    # Then it fills what exists, leaves seq to its sequence, and names nothing else
    assert statement is not None
    head = statement.splitlines()[0]
    assert head == (
        "INSERT INTO orders_outbox "
        "(event_id, event_type, aggregate_id, payload, created_at, published_at)"
    )
    assert "publish_attempts" not in statement and "trace_context" not in statement


def test_an_outbox_insert_fills_the_optional_columns_when_present() -> None:
    existing = OUTBOX_V1 | {"published_at", "publish_attempts", "trace_context"}
    statement = insert_sql(ORDERS_OUTBOX, existing, set())
    assert statement is not None
    assert "published_at, publish_attempts, trace_context)" in statement.splitlines()[0]


def test_an_outbox_without_published_at_gets_no_history() -> None:
    # Its rows could not say they were published: the relay would publish them again
    assert insert_sql(ORDERS_OUTBOX, OUTBOX_V1 | {"publish_attempts"}, set()) is None


def test_a_table_that_does_not_exist_is_skipped() -> None:
    assert insert_sql(ORDERS_OUTBOX, set(), set()) is None


def test_accounts_get_their_outstanding_sum_only_when_the_column_exists() -> None:
    before = {"customer_id", "credit_limit_minor", "created_at", "updated_at"}
    without = insert_sql(ACCOUNTS, before, set())
    with_column = insert_sql(ACCOUNTS, before | {"outstanding_minor"}, {"outstanding_minor"})
    assert without is not None and "outstanding_minor" not in without.splitlines()[0]
    assert with_column is not None and "outstanding_minor)" in with_column.splitlines()[0]
    assert "coalesce(o.outstanding, 0)" in with_column
    assert "WHERE status = 'issued' GROUP BY customer_id" in with_column


def test_a_missing_column_or_a_required_column_without_a_value_stops_the_load() -> None:
    insert = Insert("t", {"a": "1", "b": "2"}, optional=frozenset({"b"}))
    assert insert_sql(insert, {"a", "c"}, set()) == "INSERT INTO t (a)\nSELECT 1\nFROM " + (
        history_sql.ROWS
    )
    with pytest.raises(SchemaMismatch, match=r"columns missing \['a'\]"):
        insert_sql(insert, {"b", "c"}, set())
    with pytest.raises(SchemaMismatch, match=r"no value for \['c'\]"):
        insert_sql(insert, {"a", "c"}, {"c"})


def test_every_history_row_statement_is_chunked_and_the_accounts_are_not() -> None:
    inserts = [insert for plan in PLANS.values() for db in plan for insert in db.inserts]
    assert all(insert.chunked for insert in inserts if insert is not ACCOUNTS)
    assert not ACCOUNTS.chunked
    # psycopg2 reads '%' as a placeholder: the expressions use mod(), never the operator
    for insert in inserts:
        text = insert.source + "".join(insert.values.values())
        assert "%" not in text.replace("%(", "")


def test_chunks_cover_every_order_once_and_never_exceed_the_size() -> None:
    assert history_sql.chunks(5, 2) == [(1, 2), (3, 4), (5, 5)]
    assert history_sql.chunks(4, 2) == [(1, 2), (3, 4)]
    assert history_sql.chunks(0) == []
    ranges = history_sql.chunks(1_000_000)
    assert len(ranges) == 5 and ranges[-1] == (800_001, 1_000_000)


def test_parameters_spread_orders_over_the_span_and_number_like_the_service() -> None:
    now = dt.datetime(2026, 1, 31, 12, 0)
    width = len(format_number(1)) - len(NUMBER_PREFIX)
    params = history_sql.parameters(
        1000, history_sql.minor_units("1000000000.00"), now, "INV-", width
    )
    assert params["credit_limit"] == 100_000_000_000
    assert params["width"] == 6 and params["prefix"] == "INV-"
    last = params["start"] + (params["count"] - 1) * params["step"]
    assert now - history_sql.SPAN == params["start"] and last < now - dt.timedelta(minutes=59)


def test_batch_lines_are_parsed_per_actor_in_text_and_json_logs() -> None:
    lines = [
        "2026-01-01 12:00:00 INFO invoices-worker actors.steps: issue_invoices batch_size=3",
        '{"message": "confirm_orders batch_size=10 took 5 ms", "level": "INFO"}',
        "2026-01-01 12:00:01 INFO invoices-worker actors.steps: issue_invoices batch_size=1",
        "issue_invoice order_id=x dedupe_key=y outcome=issued",
    ]
    assert batches.sizes_by_actor(lines) == {"issue_invoices": [3, 1], "confirm_orders": [10]}


def test_batch_figures_are_counts_events_and_nearest_rank_percentiles() -> None:
    sizes = {"issue_invoices": list(range(1, 21)), "confirm_orders": [7]}
    figures = batches.figures(sizes)
    assert figures["issue_invoices"] == {"batches": 20, "events": 210, "p50": 10, "p95": 19}
    assert figures["confirm_orders"] == {"batches": 1, "events": 7, "p50": 7, "p95": 7}
    assert batches.figures({}) == {}


def test_a_log_is_read_whole_or_in_a_byte_range(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    first = "x issue_invoices batch_size=2\n"
    log.write_text(first + "x issue_invoices batch_size=8\n")
    both = batches.run_figures(log, (len(first), log.stat().st_size))
    assert both["run"]["issue_invoices"]["batches"] == 2
    assert both["sustained"]["issue_invoices"] == {"batches": 1, "events": 8, "p50": 8, "p95": 8}


def a_report(runs: list[dict], history: int) -> dict:
    return {
        "started_at": "now",
        "command": "nox -s bench",
        "parameters": {"history": history},
        "machine": {"cpu_count": 2, "platform": "p", "python": "3.11", "servers": {}},
        "summary": summary.summarize(runs),
    }


def a_run(system: str, batch_sizes: dict | None) -> dict:
    run: dict = {
        "system": system,
        "sustained": {"cpu_ms_per_order": {"worker": 1.0}},
        "latency": {},
    }
    if batch_sizes is not None:
        run["batch_sizes"] = batch_sizes
    return run


def test_the_table_shows_median_batch_sizes_and_the_history() -> None:
    # Given two orderflow runs whose issue_invoices batches differ, and a naive run
    def sized(p50: int, batches_: int) -> dict:
        figures = {"batches": batches_, "events": p50 * batches_, "p50": p50, "p95": 30}
        return {"run": {"issue_invoices": figures}, "sustained": {"issue_invoices": figures}}

    runs = [a_run("orderflow", sized(10, 300)), a_run("orderflow", sized(14, 500))]
    runs.append(a_run("naive", None))

    # When the table is printed
    table = summary.format_table(a_report(runs, 1_000_000))

    # Then it says the history and gives the medians over the runs
    assert "history: 1,000,000 settled orders" in table
    line = next(line for line in table.splitlines() if line.startswith("batch sizes"))
    assert line.split("|")[0].strip() == "batch sizes issue_invoices p50/p95"
    assert line.split("|")[1].strip().startswith("12 / 30 (batches 400)")


def test_the_table_says_none_when_no_batch_was_logged() -> None:
    table = summary.format_table(a_report([a_run("orderflow", {"run": {}, "sustained": {}})], 0))
    assert "history: none" in table
    assert [line for line in table.splitlines() if line.startswith("batch sizes")] == [
        f"{'batch sizes':<42}| none"
    ]


def test_indexes_are_dropped_and_rebuilt_as_they_were() -> None:
    # Given a plain index and the index of a primary key
    plain = Index("outbox_event_id", "CREATE UNIQUE INDEX outbox_event_id ON public.o (event_id)")
    key = Index("o_pkey", "CREATE UNIQUE INDEX o_pkey ON public.o (seq)", "PRIMARY KEY (seq)")

    # Then the plain one goes and comes back by its definition, the key by its constraint
    assert plain.drop_sql("o") == 'DROP INDEX "outbox_event_id"'
    assert plain.restore_sql("o") == plain.definition
    assert key.drop_sql("o") == 'ALTER TABLE o DROP CONSTRAINT "o_pkey"'
    assert key.restore_sql("o") == 'ALTER TABLE o ADD CONSTRAINT "o_pkey" PRIMARY KEY (seq)'


def test_a_table_with_two_inserts_is_loaded_once_in_the_order_of_the_plan() -> None:
    orders_database = PLANS["orderflow"][0]
    tables = orders_database.tables()
    assert list(tables) == [
        "orders",
        "order_steps",
        "orders_outbox",
        "orders_processed_messages",
    ]
    assert [insert.values["event"] for insert in tables["order_steps"]] == [
        "'OrderPlaced'",
        "'InvoiceIssued'",
    ]
