"""How fast PostgreSQL can issue from one gapless counter, against a counter per series.

``invoices.service.issue_invoice`` takes the next invoice number with
``UPDATE invoice_counters ... RETURNING`` and keeps that row locked until its
transaction commits: issuing is serialised, whatever the number of workers. This
measures the ceiling with ``pgbench`` (shipped with PostgreSQL's client tools) on
the local server, in a throw-away database, with transactions shaped like the
issuing one after the lock: one round trip for the invoice and outbox inserts,
then the commit. Four variants, alternated for ``--rounds`` rounds, medians printed:

- ``shared``: every client increments the same row (orderflow today);
- ``per-series``: each client has its own row (numbering series per shard);
- ``shared+notify`` / ``per-series+notify``: the same, plus the ``NOTIFY`` the
  outbox sends at commit (PostgreSQL serialises committing notifiers).

Run: ``python -m tests.bench.counter [--clients 16] [--seconds 10] [--rounds 3]``.
It uses the local server (127.0.0.1, user postgres) unless libpq's ``PGHOST``,
``PGPORT``, ``PGUSER``, ``PGPASSWORD`` say otherwise: point it at the database a
deployment will use, since the ceiling depends on its commit latency. It needs the
right to create a database. Not a test; the figures feed docs/scaling.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
from psycopg2 import sql

DATABASE = "orderflow_bench_counter"
# where libpq goes unless its own PG* variables say otherwise
LIBPQ_DEFAULTS = {"PGHOST": "127.0.0.1", "PGUSER": "postgres"}
SCHEMA = """
CREATE TABLE counters (name text PRIMARY KEY, last_value bigint NOT NULL);
CREATE TABLE invoices (id bigserial PRIMARY KEY, sequence bigint NOT NULL UNIQUE, body text);
CREATE TABLE outbox (seq bigserial PRIMARY KEY, payload text NOT NULL);
INSERT INTO counters SELECT 'shared', 0;
INSERT INTO counters SELECT 'series-' || n, 0 FROM generate_series(1, 256) AS n;
"""
# pgbench script: the counter's lock is held across the insert round trip and the commit.
SCRIPT = """BEGIN;
UPDATE counters SET last_value = last_value + 1 WHERE name = {row} RETURNING last_value AS n \\gset
WITH i AS (INSERT INTO invoices (sequence, body) VALUES ({sequence}, repeat('x', 200)) RETURNING id)
  INSERT INTO outbox (payload) SELECT repeat('y', 300) FROM i;
{notify}COMMIT;
"""
VARIANTS = {
    "shared": ("'shared'", ""),
    "per-series": ("'series-' || :client_id + 1", ""),
    "shared+notify": ("'shared'", "NOTIFY orderflow_bench_counter;\n"),
    "per-series+notify": ("'series-' || :client_id + 1", "NOTIFY orderflow_bench_counter;\n"),
}
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def _script(name: str) -> str:
    row, notify = VARIANTS[name]
    # numbers repeat across series: keep (series, n) unique, apart from the shared ones
    sequence = ":n" if name.startswith("shared") else "-(:n * 1000 + :client_id + 1)"
    return SCRIPT.format(row=row, sequence=sequence, notify=notify)


def _admin(*statements: sql.Composable) -> None:
    connection = psycopg2.connect(dbname="postgres", **_libpq())
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def _libpq() -> dict[str, str]:
    """Connection keywords for psycopg2 from the libpq variables (host, port, user, ...)."""
    keywords = {"PGHOST": "host", "PGPORT": "port", "PGUSER": "user", "PGPASSWORD": "password"}
    return {keywords[name]: value for name, value in _environment().items() if name in keywords}


def _environment() -> dict[str, str]:
    """The environment with libpq's defaults filled in: pgbench and psycopg2 then reach
    the same server."""
    return LIBPQ_DEFAULTS | dict(os.environ)


def _prepare() -> None:
    name = sql.Identifier(DATABASE)
    _admin(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name),
        sql.SQL("CREATE DATABASE {}").format(name),
    )
    connection = psycopg2.connect(dbname=DATABASE, **_libpq())
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(SCHEMA)
    finally:
        connection.close()


def _drop() -> None:
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def _run(pgbench: str, script: Path, clients: int, seconds: int) -> float:
    """Transactions per second of one pgbench run of ``script``."""
    command = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", "2"]
    command += ["-T", str(seconds), "-f", str(script), DATABASE]
    environment = _environment()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    found = TPS.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def _measure(pgbench: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Transactions per second of every variant, ``args.rounds`` runs each, alternated."""
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        scripts = {name: Path(folder) / f"{name}.sql" for name in VARIANTS}
        for name, path in scripts.items():
            path.write_text(_script(name))
        for round_ in range(1, args.rounds + 1):
            for name, path in scripts.items():
                rates[name].append(_run(pgbench, path, args.clients, args.seconds))
                print(f"round {round_} {name}: {rates[name][-1]:.0f} tx/s", file=sys.stderr)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.counter", description=__doc__)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=int, default=10, help="each run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant (3)")
    args = parser.parse_args(argv)
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench not found: install PostgreSQL's client tools")
    _prepare()
    try:
        rates = _measure(pgbench, args)
    finally:
        _drop()
    shared = statistics.median(rates["shared"])
    print(f"\n{args.clients} clients, {args.seconds} s runs, median of {args.rounds}")
    print(f"{'variant':<20} {'tx/s':>8} {'vs shared':>10}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<20} {median:>8.0f} {median / shared:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
