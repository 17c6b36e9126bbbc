"""``orderflow dlq list``, ``replay`` and ``recover``: parse, wire, print.

``ops.cli`` calls :func:`add_commands` while it builds its parser; brokers and
bootstrap come in when a subcommand runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ops.services import NAMES, consumers
from ops.settings import Settings

if TYPE_CHECKING:
    from ops.dlq.recover import QueueReport
    from ops.dlq.replay import Enqueue, Outcome

DEFAULT_LIMIT = 100
MAX_OPERATOR_NAME = 128  # the replayed_by column
NO_BROKER = (
    "BROKER_URL is not set: standalone mode keeps its messages in memory inside the "
    "`orderflow standalone` process, so there is no broker and no .XQ. Replay and "
    "recover need the distributed mode (RabbitMQ); `orderflow dlq list` works in both."
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``dlq list``, ``dlq replay`` and ``dlq recover`` to the ``orderflow`` subcommands."""
    dlq = commands.add_parser("dlq", help="list and replay dead letters")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters not yet replayed, newest first")
    listing.add_argument("--service", choices=NAMES, help="one service only")
    listing.add_argument("--all", action="store_true", help="include replayed dead letters")
    listing.add_argument("--json", action="store_true", help="full records as a JSON list")
    listing.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIMIT, metavar="N", help="at most N (100)"
    )
    listing.set_defaults(run=run_list)
    replay = actions.add_parser("replay", help="send dead letters again (RabbitMQ only)")
    replay.add_argument("ids", nargs="*", metavar="ID", help="message ids from `dlq list`")
    replay.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    replay.add_argument("--service", choices=NAMES, help="one service only")
    replay.add_argument(
        "--by", metavar="NAME", help="who replays (default ORDERFLOW_OPERATOR, else the login)"
    )
    replay.add_argument("--again", action="store_true", help="replay ids already replayed")
    replay.add_argument(
        "--json", action="store_true", help="print the outcome as one JSON document at the end"
    )
    replay.set_defaults(run=run_replay)
    recover = actions.add_parser(
        "recover",
        help="record the .XQ messages a worker could not record (its database was down)",
    )
    recover.add_argument("--service", choices=NAMES, help="one service only")
    recover.add_argument("--json", action="store_true", help="print the report as JSON")
    recover.set_defaults(run=run_recover)


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    """Print the dead letters (a table, or JSON with ``--json``); always exits 0."""
    from ops import bootstrap
    from ops.dlq import listing, records
    from ops.shared.values.clock import utcnow

    services = _services(args)
    databases = bootstrap.init_databases(settings, services)
    try:
        entries = records.newest_first(services, include_replayed=args.all, limit=args.limit)
        total = records.count(services, include_replayed=args.all)
    finally:
        for database in databases.values():
            database.close()
    now = utcnow()
    if args.json:
        _say(listing.render_json(entries, now))
        return 0
    _say(listing.render_table(entries, now))
    if total > len(entries):
        _say(f"(the newest {len(entries)} of {total}; --limit N shows more)")
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Replay the named dead letters (or ``--all``); 0 if every one was replayed, else 1,
    2 for a command that cannot run (bad arguments, no broker)."""
    problem = _replay_usage_problem(settings, args)
    if problem:
        _say(f"orderflow dlq replay: {problem}", error=True)
        return 2
    from ops import bootstrap
    from ops.dlq import replay

    services = _services(args)
    by = args.by or settings.operator_name
    databases = bootstrap.init_databases(settings, services)
    enqueue, close = rabbitmq_publisher(str(settings.broker_url), settings.queue_type)
    outcomes: list[replay.Outcome] = []
    try:
        ids, skipped = _requested(args, services)
        for outcome in replay.replay(
            ids, enqueue=enqueue, by=by, services=services, again=args.again
        ):
            outcomes.append(outcome)
            if not args.json:
                _say(outcome.line(), error=not isinstance(outcome, replay.Replayed))
    finally:
        close()
        for database in databases.values():
            database.close()
    if args.json:
        _say(json.dumps(replay_report(outcomes, skipped, by), indent=2))
    elif args.all and not ids:
        _say("no dead letters to replay")
    return 0 if all(isinstance(outcome, replay.Replayed) for outcome in outcomes) else 1


def replay_report(outcomes: list[Outcome], skipped: list[str], by: str) -> dict[str, Any]:
    """``dlq replay --json``: what was replayed (old and new ids), what was not and why,
    and the undecodable records ``--all`` left out."""
    from ops.dlq import replay

    done = [outcome for outcome in outcomes if isinstance(outcome, replay.Replayed)]
    refused = [outcome for outcome in outcomes if not isinstance(outcome, replay.Replayed)]
    return {
        "by": by,
        "replayed": [dataclasses.asdict(outcome) for outcome in done],
        "not_replayed": [dataclasses.asdict(outcome) for outcome in refused],
        "skipped_undecodable": skipped,
    }


def run_recover(settings: Settings, args: argparse.Namespace) -> int:
    """Record each ``.XQ`` message that has no dead-letter record; 0 if every message
    now has one, 1 if some could not be recorded, 2 without a broker."""
    if settings.broker_url is None:
        _say(f"orderflow dlq recover: {NO_BROKER}", error=True)
        return 2
    from dramatiq.common import xq_name

    from ops import bootstrap
    from ops.dlq import recover

    services = _services(args)
    databases = bootstrap.init_databases(settings, services)
    reports = []
    try:
        for service in services:
            bodies = recover.peek(str(settings.broker_url), xq_name(service))
            report = recover.recover(service, bodies, consumers()[service].actors)
            reports.append(report)
            if not args.json:
                for line in report.lines():
                    _say(line)
    finally:
        for database in databases.values():
            database.close()
    if args.json:
        _say(json.dumps({"queues": [recover_report(report) for report in reports]}, indent=2))
    return 0 if all(report.complete for report in reports) else 1


def recover_report(report: QueueReport) -> dict[str, Any]:
    """One queue of ``dlq recover --json``: its counts, what was recorded now and what
    could not be, and whether every message now has a record."""
    from ops.dlq import recover

    now = [o for o in report.outcomes if isinstance(o, recover.Recovered)]
    failed = [o for o in report.outcomes if not isinstance(o, recover.Recovered)]
    return {
        "queue": report.queue,
        "messages": report.messages,
        "already_recorded": report.already_recorded,
        "recorded_now": [dataclasses.asdict(outcome) for outcome in now],
        "not_recorded": [dataclasses.asdict(outcome) for outcome in failed],
        "complete": report.complete,
    }


def rabbitmq_publisher(
    broker_url: str, queue_type: str = "classic"
) -> tuple[Enqueue, Callable[[], None]]:
    """``(enqueue, close)`` for a RabbitMQ broker with publisher confirms: ``enqueue``
    returns once RabbitMQ has the message (declaring its queue first, of ``queue_type``)."""
    from actors.broker import connection_urls
    from actors.rabbitmq import OrderflowRabbitmqBroker

    # Only publishes: no worker middleware, so the message goes out exactly as built.
    broker = OrderflowRabbitmqBroker(
        url=connection_urls(broker_url),
        confirm_delivery=True,
        middleware=[],
        undecodable={},
        queue_type=queue_type,
    )
    return broker.enqueue, broker.close


def _requested(args: argparse.Namespace, services: list[str]) -> tuple[list[str], list[str]]:
    """The ids named, or for ``--all`` the backlog, oldest first; and the ids of the
    undecodable records ``--all`` leaves out (they can never be replayed), each also
    named on stderr."""
    from ops.dlq import replay

    if not args.all:
        return list(args.ids), []
    ids, undecodable = replay.backlog(services)
    for entry in undecodable:
        _say(
            f"{entry.record.message_id}: skipped: undecodable, never replayable "
            "(its raw body is in `orderflow dlq list --json`)",
            error=True,
        )
    return ids, [entry.record.message_id for entry in undecodable]


def _replay_usage_problem(settings: Settings, args: argparse.Namespace) -> str | None:
    if bool(args.ids) == args.all:
        return "name the message ids to replay, or give --all (not both)"
    if args.again and args.all:
        return "--again replays named ids only, not --all"
    by = args.by or settings.operator_name
    if not by.strip() or len(by) > MAX_OPERATOR_NAME:
        return f"--by must be 1 to {MAX_OPERATOR_NAME} characters"
    if settings.broker_url is None:
        return NO_BROKER
    return None


def _say(line: str, *, error: bool = False) -> None:
    """One line on stdout (or stderr for ``error``), flushed: replays report as they go."""
    stream = sys.stderr if error else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _services(args: argparse.Namespace) -> list[str]:
    return [args.service] if args.service else list(NAMES)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
