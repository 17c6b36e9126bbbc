"""Settings: the one place that reads the environment.

Everything else receives a :class:`Settings` (or the values it needs) as an
argument, so tests build a ``Settings`` directly instead of patching
``os.environ``. Each field declares its environment variable and default once,
through :func:`env`; ``from_env`` and ``to_env`` are derived from those
declarations, and ``__post_init__`` checks every ``Settings``, however built.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ops.shared.values.nodes import broker_nodes

TRACES_EXPORTERS = ("none", "otlp", "console")
QUEUE_TYPES = ("classic", "quorum")
PLACEHOLDER = "change-me"  # how .env.example's secrets begin: never a real one


class SettingsError(ValueError):
    """Raised when an environment variable holds a value we cannot use."""


def _login_name() -> str:
    """The login name of whoever runs the command, or ``unknown`` when there is none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        return "unknown"


@dataclasses.dataclass(frozen=True)
class _Variable:
    """How one field is read from the environment and written back to it."""

    name: str
    minimum: int = 1  # integers only
    case: Callable[[str], str] | None = None  # str.lower or str.upper, applied to what is read
    fallback: Callable[[], Any] | None = None  # from_env's default when not the field's
    export: bool = True  # whether to_env writes it


def env(name: str, default: Any = None, **how: Any) -> Any:
    """A field read from the environment variable ``name``, ``how`` as :class:`_Variable`'s
    fields. Its kind follows ``default``'s type: ``str`` or ``None`` text, ``int`` an integer
    of at least ``minimum``, ``float`` a positive finite number, ``Decimal`` at most 2
    decimals, ``bool`` a flag, ``Path`` a path; unset or blank means the default."""
    return dataclasses.field(default=default, metadata={"env": _Variable(name, **how)})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Configuration of every orderflow process, with sane defaults.

    With no ``BROKER_URL`` and no database URLs the system runs standalone:
    Dramatiq's in-process broker and SQLite files under ``data_dir``.
    """

    broker_url: str | None = env("BROKER_URL")
    orders_database_url: str | None = env("ORDERS_DATABASE_URL")
    invoices_database_url: str | None = env("INVOICES_DATABASE_URL")
    data_dir: Path = env("ORDERFLOW_DATA_DIR", Path("var"))  # noqa: RUF009 - immutable
    host: str = env("ORDERFLOW_HOST", "127.0.0.1")
    orders_port: int = env("ORDERS_PORT", 3333)
    invoices_port: int = env("INVOICES_PORT", 3334)
    # concurrent requests form bigger group commits and batches
    http_threads: int = env("HTTP_THREADS", 16)
    worker_processes: int = env("WORKER_PROCESSES", 1)
    # batches carry the load; more threads only queue on locks
    worker_threads: int = env("WORKER_THREADS", 2)
    saga_timeout: float = env("ORDERS_SAGA_TIMEOUT", 300.0)
    default_credit_limit: Decimal = env(  # noqa: RUF009 - immutable
        "INVOICES_DEFAULT_CREDIT_LIMIT", Decimal("10000.00")
    )
    idempotency_ttl: float = env("IDEMPOTENCY_TTL", 86400.0)
    max_body_bytes: int = 64 * 1024  # not configurable
    max_retries: int = env("MAX_RETRIES", 7, minimum=0)
    max_redeliveries: int = env("MAX_REDELIVERIES", 3, minimum=0)
    min_backoff_ms: int = env("MIN_BACKOFF_MS", 500)
    max_backoff_ms: int = env("MAX_BACKOFF_MS", 300_000)
    relay_batch: int = env("RELAY_BATCH", 100)
    relay_poll_interval: float = env("RELAY_POLL_INTERVAL", 1.0)
    log_level: str = env("LOG_LEVEL", "INFO", case=str.upper)
    jwt_secret: str | None = env("ORDERFLOW_JWT_SECRET")
    jwt_public_key: str | None = env("ORDERFLOW_JWT_PUBLIC_KEY")
    jwt_private_key: str | None = env("ORDERFLOW_JWT_PRIVATE_KEY")
    jwt_issuer: str = env("ORDERFLOW_JWT_ISSUER", "orderflow")
    jwt_audience: str = env("ORDERFLOW_JWT_AUDIENCE", "orderflow")
    gateway_port: int = env("GATEWAY_PORT", 3000)
    # the audit part: the console's health view (operators)
    audit_port: int = env("AUDIT_PORT", 3335)
    orders_url: str | None = env("ORDERS_URL")
    invoices_url: str | None = env("INVOICES_URL")
    audit_url: str | None = env("AUDIT_URL")
    # seconds between the audit part's runs of the audit
    audit_interval: float = env("AUDIT_INTERVAL", 15.0)
    gateway_timeout: float = env("GATEWAY_TIMEOUT", 2.0)
    orders_worker_metrics_port: int = env("ORDERS_WORKER_METRICS_PORT", 9191)
    invoices_worker_metrics_port: int = env("INVOICES_WORKER_METRICS_PORT", 9192)
    orders_relay_metrics_port: int = env("ORDERS_RELAY_METRICS_PORT", 9301)
    invoices_relay_metrics_port: int = env("INVOICES_RELAY_METRICS_PORT", 9302)
    traces_exporter: str = env("OTEL_TRACES_EXPORTER", "none", case=str.lower)
    # RabbitMQ queues: classic, or quorum (replicated in a cluster)
    queue_type: str = env("RABBITMQ_QUEUE_TYPE", "classic", case=str.lower)
    # a CLIENT span per SQL statement (costly; for investigations)
    trace_sql: bool = env("ORDERFLOW_TRACE_SQL", False)
    log_format: str = env("LOG_FORMAT", "text", case=str.lower)
    process_name: str | None = env("ORDERFLOW_PROCESS", export=False)
    # who `orderflow dlq replay` records: the login name when read from the environment
    operator_name: str = env("ORDERFLOW_OPERATOR", "unknown", fallback=_login_name)
    # the console's link to a trace: {trace_id} in it
    trace_url_template: str | None = env("ORDERFLOW_TRACE_URL_TEMPLATE")

    def __post_init__(self) -> None:
        """Refuse what no process could run with, with the variable to fix named."""
        for field, variable in _declared():
            value = getattr(self, field.name)
            _check_range(variable, type(field.default), value, str(value))
        self._check()

    def _check(self) -> None:
        """The checks that involve more than a number's range, or more than one field."""
        if self.max_backoff_ms >= 30 * 60 * 1000:
            raise SettingsError(
                "MAX_BACKOFF_MS must stay below RabbitMQ's consumer_timeout (30 minutes): "
                "a delayed retry is held unacknowledged by the worker until it is due"
            )
        if self.queue_type not in QUEUE_TYPES:
            raise SettingsError(f"RABBITMQ_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}")
        if self.traces_exporter not in TRACES_EXPORTERS:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER must be one of {', '.join(TRACES_EXPORTERS)}"
            )
        if self.log_format not in ("text", "json"):
            raise SettingsError("LOG_FORMAT must be text or json")
        if self.default_credit_limit < 0:
            raise SettingsError("INVOICES_DEFAULT_CREDIT_LIMIT must not be negative")
        template = self.trace_url_template
        if template is not None and (
            not template.startswith(("http://", "https://")) or "{trace_id}" not in template
        ):
            raise SettingsError(
                "ORDERFLOW_TRACE_URL_TEMPLATE must be an http(s) URL with {trace_id} in it, "
                "e.g. http://localhost:16686/trace/{trace_id}"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < 32:
            raise SettingsError("ORDERFLOW_JWT_SECRET must be at least 32 bytes long")
        if (self.jwt_secret or "").lower().startswith(PLACEHOLDER):
            raise SettingsError(
                "ORDERFLOW_JWT_SECRET still holds the placeholder of .env.example: "
                "anyone could sign tokens with it; set a random one (openssl rand -hex 32)"
            )
        if self.broker_url is not None:
            try:
                broker_nodes(self.broker_url)
            except ValueError as exc:
                raise SettingsError(f"BROKER_URL: {exc}") from None
        if self.jwt_private_key and not self.jwt_public_key:
            raise SettingsError("ORDERFLOW_JWT_PRIVATE_KEY needs ORDERFLOW_JWT_PUBLIC_KEY too")
        if self.distributed and not (self.orders_database_url and self.invoices_database_url):
            raise SettingsError(
                "BROKER_URL is set, so ORDERS_DATABASE_URL and INVOICES_DATABASE_URL "
                "must be set too (distributed mode runs each part as its own process)"
            )

    @property
    def distributed(self) -> bool:
        """True when a broker URL is configured (RabbitMQ + PostgreSQL mode)."""
        return self.broker_url is not None

    def database_url(self, service: str) -> str:
        """The database URL of ``service``; a SQLite file under ``data_dir`` by default."""
        configured = self._part(service, "database_url")
        return configured or f"sqlite:///{self.data_dir / service}.sqlite3"

    @classmethod
    def variables(cls) -> list[str]:
        """Every environment variable the settings read, in the order declared."""
        return [variable.name for _, variable in _declared()]

    def database_variables(self) -> dict[str, tuple[str, str | None]]:
        """Each service's database variable and configured URL (None: not set), by service."""
        return {
            field.name.removesuffix("_database_url"): (variable.name, getattr(self, field.name))
            for field, variable in _declared()
            if field.name.endswith("_database_url")
        }

    def port(self, service: str) -> int:
        """The HTTP port of ``service`` (``orders``, ``invoices``, ``gateway`` or ``audit``)."""
        return self._part(service, "port")

    def metrics_port(self, part: str) -> int:
        """The Prometheus port of a worker pool or relay: ``orders-worker``, ``orders-relay``,
        ``invoices-worker`` or ``invoices-relay`` (fronts answer ``/metrics`` on their own)."""
        return self._part(part, "metrics_port", words=2)

    def service_url(self, service: str) -> str:
        """Base URL the gateway uses for ``service`` (``orders``, ``invoices`` or the
        ``audit`` part); this machine's port by default."""
        configured = self._part(service, "url")
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return (configured or f"http://{host}:{self.port(service)}").rstrip("/")

    def _part(self, name: str, suffix: str, words: int = 1) -> Any:
        """The field ``<name>_<suffix>`` of a part named in ``words`` words joined by ``-``
        (``orders-worker``, ``metrics_port``: ``orders_worker_metrics_port``); KeyError if
        there is none (so ``port("orders-worker-metrics")`` is no metrics port)."""
        field = f"{name.replace('-', '_')}_{suffix}"
        named = len(name.split("-")) == words and all(w.isalpha() for w in name.split("-"))
        if not named or field not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(f"no setting {field} for {name!r}")
        return getattr(self, field)

    @property
    def dev_key_path(self) -> Path:
        """Where standalone and ``orderflow up`` keep the development signing key."""
        return self.data_dir / "dev-jwt-secret"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see the README's table)."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, variable in _declared():
            raw = source.get(variable.name, "").strip()
            if raw:
                kind = type(field.default)
                values[field.name] = _parse(variable, kind, raw)
                _check_range(variable, kind, values[field.name], raw)
            elif variable.fallback is not None:
                values[field.name] = variable.fallback()
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in a child process;
        those without a default only when set, ``ORDERFLOW_PROCESS`` never."""
        exported: dict[str, str] = {}
        for field, variable in _declared():
            value = getattr(self, field.name)
            if variable.export and (value or field.default is not None):
                # a flag as true/false; str(float) is its repr, so it reads back equal
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                exported[variable.name] = text
        return exported


def _declared() -> Iterator[tuple[dataclasses.Field[Any], _Variable]]:
    """Each field read from the environment, with how it is read."""
    for field in dataclasses.fields(Settings):
        if "env" in field.metadata:
            yield field, field.metadata["env"]


_NUMBERS: dict[type, str] = {int: "an integer", float: "a number", Decimal: "a decimal like 100.00"}


def _parse(variable: _Variable, kind: type, raw: str) -> Any:
    """``raw`` (stripped, not blank) as a value of ``kind``, or a SettingsError naming it."""
    name = variable.name
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    if kind in _NUMBERS:
        try:
            return kind(raw)
        except (ValueError, InvalidOperation):
            raise SettingsError(f"{name} must be {_NUMBERS[kind]}, got {raw!r}") from None
    if issubclass(kind, Path):
        return Path(raw)
    return variable.case(raw) if variable.case else raw


def _check_range(variable: _Variable, kind: type, value: Any, shown: str) -> None:
    """Refuse a number out of its kind's range; ``shown`` is how the error quotes it."""
    name = variable.name
    if kind is int and value < variable.minimum:
        raise SettingsError(f"{name} must be at least {variable.minimum}, got {value}")
    if kind is float and (not value > 0 or value == float("inf")):
        raise SettingsError(f"{name} must be a positive finite number, got {shown!r}")
    if kind is Decimal and (not value.is_finite() or value.as_tuple().exponent < -2):
        raise SettingsError(f"{name} must be finite with at most 2 decimals, got {shown!r}")
