"""The ``orderflow`` command for operators.

orderflow standalone          everything in one process (SQLite, in-process broker)
orderflow up                  every part as its own process (RabbitMQ, PostgreSQL)
orderflow migrate             create or upgrade both schemas (safe to run twice)
orderflow migrate --status    applied and pending migrations, changing nothing (--json)
orderflow serve SERVICE       one HTTP front (orders on 3333, invoices on 3334, gateway on
                              3000, audit on 3335: the health report the console shows)
orderflow relay SERVICE       one outbox relay (plus its periodic chores)
orderflow worker SERVICE      one Dramatiq worker pool (runs `dramatiq ops.worker:SERVICE`)
orderflow demo                drive a realistic scenario and check consistency
orderflow dlq list            dead letters not yet replayed, newest first (--all, --json)
orderflow dlq replay ID...    send dead letters again through RabbitMQ (or --all)
orderflow dlq recover         record the .XQ messages a worker could not record
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys

from ops.dlq import add_commands
from ops.logs import configure_logging
from ops.services import FRONTS, NAMES
from ops.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"orderflow: configuration error: {exc}", file=sys.stderr)
        return 2
    process = settings.process_name or _process_name(args)
    configure_logging(settings.log_level, process, settings.log_format)
    if args.command in TRACED_COMMANDS:
        from ops.telemetry import setup_tracing

        setup_tracing(settings, process)
    from ops import unreachable
    from ops.bootstrap import NoSigningKey, SchemaOutOfDate

    try:
        return int(args.run(settings, args) or 0)
    except (NoSigningKey, SchemaOutOfDate) as exc:
        print(f"orderflow: {exc}", file=sys.stderr)
        return 2
    except unreachable.UNREACHABLE as exc:
        print(f"orderflow: {unreachable.describe(exc, settings)}", file=sys.stderr)
        return unreachable.EXIT_UNREACHABLE


TRACED_COMMANDS = ("standalone", "serve", "relay")
EXIT_STATUSES = """exit status:
  0  done
  1  done, and found a problem (audit: an invariant broken; demo: a check failed)
  2  configuration error (a variable holds a value orderflow cannot use)
  3  a database or the broker cannot be reached (the line names the variable to check);
     for demo --attach, a front of the running system"""


def _process_name(args: argparse.Namespace) -> str:
    """``orders-api``, ``invoices-relay``, … as ``orderflow up`` names its children."""
    if args.command == "serve":
        return f"{args.service}-api"
    if args.command == "relay":
        return f"{args.service}-relay"
    return f"orderflow-{args.command}"


def _standalone(settings: Settings, args: argparse.Namespace) -> int:
    from ops import standalone

    standalone.run(settings)
    return 0


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from ops import supervisor

    return supervisor.run(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ops import bootstrap

    if args.status:
        return _migration_status(bootstrap.migration_status(settings), args.json)
    if args.json:
        print("orderflow: migrate --json goes with --status", file=sys.stderr)
        return 2
    for service, names in bootstrap.migrate(settings).items():
        if names:
            print(f"{service}: applied {', '.join(names)}")
        else:
            print(f"{service}: schema is up to date")
    return 0


def _migration_status(status: dict[str, list], as_json: bool) -> int:
    """Print each service's applied and pending migrations (``migrate --status``)."""
    report = {
        service: {
            "applied": [
                {"name": name, "applied_at": applied.isoformat()}
                for name, applied in entries
                if applied is not None
            ],
            "pending": [name for name, applied in entries if applied is None],
        }
        for service, entries in status.items()
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for service, state in report.items():
        for entry in state["applied"]:
            print(f"{service}: {entry['name']}  applied {entry['applied_at']}")
        for name in state["pending"]:
            print(f"{service}: {name}  pending")
        if not state["pending"]:
            print(f"{service}: schema is up to date")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from ops import bootstrap
    from ops.serving import http_server, run_http_server, stop_event_on_signals

    if args.service == "audit":  # reads both databases, writes neither
        bootstrap.init_databases(settings, read_only=True)
    elif args.service != "gateway":
        bootstrap.init_databases(settings, [args.service])
    server = http_server(
        bootstrap.build_app(settings, args.service), settings, settings.port(args.service)
    )
    stop = stop_event_on_signals()
    print(
        f"{args.service} API listening on http://{settings.host}:{settings.port(args.service)}",
        flush=True,
    )
    run_http_server(server, stop)
    return 0


def _relay(settings: Settings, args: argparse.Namespace) -> int:
    import dramatiq

    from ops import bootstrap
    from ops.serving import stop_event_on_signals
    from ops.shared.web import exposition

    exposition.serve(settings.host, settings.metrics_port(f"{args.service}-relay"))
    bootstrap.init_databases(settings, [args.service])
    broker = bootstrap.build_worker_broker(settings, [])
    dramatiq.set_broker(broker)
    relay = bootstrap.build_relay(settings, args.service, broker)
    relay.run(stop_event_on_signals())
    broker.close()
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from ops import bootstrap
    from ops.shared.web.auth import Role, mint

    keys = bootstrap.token_keys(settings, create_dev_key=True)
    role = Role.OPERATOR if args.operator else Role.CUSTOMER
    print(mint(keys, args.customer, role, args.ttl))
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from ops import audit

    return audit.main(settings, args)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from ops import bootstrap, supervisor

    # Reach the database and the broker here first: Dramatiq would end in a traceback.
    for database in bootstrap.init_databases(settings, [args.service]).values():
        database.close()
    bootstrap.broker_check(settings)()

    metrics_env = supervisor.worker_metrics_env(settings, args.service)
    supervisor.fresh_metrics_directory(metrics_env)
    os.environ.update(metrics_env)  # Dramatiq's exporter: port, host, directory
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        f"ops.worker:{args.service}",
        "--queues",
        args.service,
        "--processes",
        str(settings.worker_processes),
        "--threads",
        str(settings.worker_threads),
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with dramatiq
    return 0  # pragma: no cover


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from ops import demo

    return demo.main(settings, args)


def version() -> str:
    """The installed orderflow's version, or ``unknown`` when it runs from a checkout that
    was never installed."""
    try:
        return importlib.metadata.version("orderflow")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderflow",
        description=__doc__,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"orderflow {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simple = {
        "standalone": (_standalone, "run everything in one process (SQLite, in-process broker)"),
        "up": (_up, "run every part as its own process (needs RabbitMQ and PostgreSQL URLs)"),
    }
    for name, (function, help_text) in simple.items():
        commands.add_parser(name, help=help_text).set_defaults(run=function)
    migrate = commands.add_parser("migrate", help="create or upgrade both database schemas")
    migrate.add_argument(
        "--status", action="store_true", help="list applied and pending migrations; change nothing"
    )
    migrate.add_argument("--json", action="store_true", help="with --status: print JSON")
    migrate.set_defaults(run=_migrate)
    per_service = {
        "serve": (_serve, "run one HTTP front", FRONTS),
        "relay": (_relay, "run one service's outbox relay", NAMES),
        "worker": (_worker, "run one service's Dramatiq worker pool", NAMES),
    }
    for name, (function, help_text, choices) in per_service.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("service", choices=choices)
        sub.set_defaults(run=function)
    token = commands.add_parser("token", help="print a signed token for a customer or operator")
    token.add_argument(
        "--customer", required=True, metavar="ID", help="the token's subject (the customer id)"
    )
    token.add_argument("--operator", action="store_true", help="give the operator role")
    token.add_argument(
        "--ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime in seconds (default 3600)",
    )
    token.set_defaults(run=_token)
    audit = commands.add_parser("audit", help="check the consistency invariants of both services")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument(
        "--outbox-threshold",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="age after which an unpublished outbox event is a violation (default 60)",
    )
    audit.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help="age after which an unsettled order is a violation (default ORDERS_SAGA_TIMEOUT)",
    )
    audit.set_defaults(run=_audit)
    demo = commands.add_parser("demo", help="drive a realistic scenario and check consistency")
    demo.add_argument("--orders", type=int, default=240, help="orders to place (default 240)")
    demo.add_argument("--customers", type=int, default=12, help="customers (default 12)")
    demo.add_argument(
        "--attach",
        action="store_true",
        help="use a system that is already running instead of starting one",
    )
    demo.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for every saga to finish (default 180)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON document on stdout (progress goes to stderr)",
    )
    demo.set_defaults(run=_demo)
    add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
