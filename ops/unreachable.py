"""One line for an operator when a command cannot reach a database or the broker.

``orderflow`` commands end with exit status 3 and this line instead of a driver's
traceback: what could not be reached, the variable that says where it is (its URL
without a password), and the driver's first line of explanation.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import dramatiq.errors
import peewee
import pika.exceptions
import psycopg2

from ops.settings import Settings
from ops.shared.values.nodes import redacted

EXIT_UNREACHABLE = 3
DATABASE_ERRORS = (peewee.OperationalError, psycopg2.OperationalError)
try:  # Dramatiq's broker connection error, renamed within Dramatiq 2
    _DRAMATIQ_CONNECTION_ERROR: type[Exception] = dramatiq.errors.BrokerConnectionError
except AttributeError:  # pragma: no cover (older Dramatiq 2 releases)
    _DRAMATIQ_CONNECTION_ERROR = dramatiq.errors.ConnectionError
BROKER_ERRORS = (pika.exceptions.AMQPConnectionError, _DRAMATIQ_CONNECTION_ERROR)
UNREACHABLE = DATABASE_ERRORS + BROKER_ERRORS

_PORT = re.compile(r"port (\d+)|\.s\.PGSQL\.(\d+)")
_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def describe(exc: BaseException, settings: Settings) -> str:
    """The line that says what ``exc`` (one of ``UNREACHABLE``) could not reach."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, BROKER_ERRORS):
        where = (
            f"BROKER_URL={redacted(settings.broker_url)}" if settings.broker_url else "BROKER_URL"
        )
        return f"cannot reach RabbitMQ (check {where}): {reason or type(exc).__name__}"
    return f"cannot reach {_databases(str(exc), settings)}: {reason}"


def _databases(text: str, settings: Settings) -> str:
    """Which database the driver's message is about, with the variable to check; both
    when the message does not tell them apart."""
    urls = settings.database_variables()
    port = next((int(a or b) for a, b in _PORT.findall(text)), None)
    missing = _DATABASE.search(text)
    named = []
    for service, (variable, url) in urls.items():
        if not url:
            continue
        parts = urlsplit(url)
        if missing is not None:
            matches = parts.path.lstrip("/") == missing.group(1)
        else:
            matches = port is None or port in _ports(parts.netloc)
        if matches:
            named.append((service, variable, url))
    if not named:
        named = [(service, variable, url) for service, (variable, url) in urls.items() if url]
    if len(named) == 1:
        service, variable, url = named[0]
        return f"the {service} database (check {variable}={redacted(url)})"
    variables = " and ".join(variable for _, variable, _ in named) or "the database URLs"
    return f"PostgreSQL (check {variables})"


def _ports(netloc: str) -> set[int]:
    """The ports of a URL's hosts, one or several (libpq's ``h1:5432,h2:5433``)."""
    hosts = netloc.rpartition("@")[2].split(",")
    ports = set()
    for host in hosts:
        _, colon, port = host.rpartition(":")
        ports.add(int(port) if colon and port.isdigit() else 5432)
    return ports
