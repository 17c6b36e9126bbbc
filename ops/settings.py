"""Settings: the one place that reads the environment.

Everything else receives a :class:`Settings` (or the values it needs) as an
argument, so tests build a ``Settings`` directly instead of patching
``os.environ``.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ops.shared.nodes import broker_nodes

TRACES_EXPORTERS = ("none", "otlp", "console")
QUEUE_TYPES = ("classic", "quorum")
PLACEHOLDER = "change-me"  # how .env.example's secrets begin: never a real one


class SettingsError(ValueError):
    """Raised when an environment variable holds a value we cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Configuration of every orderflow process, with sane defaults.

    With no ``BROKER_URL`` and no database URLs the system runs standalone:
    Dramatiq's in-process broker and SQLite files under ``data_dir``.
    """

    broker_url: str | None = None
    orders_database_url: str | None = None
    invoices_database_url: str | None = None
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    orders_port: int = 3333
    invoices_port: int = 3334
    http_threads: int = 16  # concurrent requests form bigger group commits and batches
    worker_processes: int = 1
    worker_threads: int = 2  # batches carry the load; more threads only queue on locks
    saga_timeout: float = 300.0
    default_credit_limit: Decimal = Decimal("10000.00")
    idempotency_ttl: float = 86400.0
    max_body_bytes: int = 64 * 1024
    max_retries: int = 7
    max_redeliveries: int = 3
    min_backoff_ms: int = 500
    max_backoff_ms: int = 300_000
    relay_batch: int = 100
    relay_poll_interval: float = 1.0
    log_level: str = "INFO"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key: str | None = None
    jwt_issuer: str = "orderflow"
    jwt_audience: str = "orderflow"
    gateway_port: int = 3000
    audit_port: int = 3335  # the audit part: the console's health view (operators)
    orders_url: str | None = None
    invoices_url: str | None = None
    audit_url: str | None = None
    audit_interval: float = 15.0  # seconds between the audit part's runs of the audit
    gateway_timeout: float = 2.0
    orders_worker_metrics_port: int = 9191
    invoices_worker_metrics_port: int = 9192
    orders_relay_metrics_port: int = 9301
    invoices_relay_metrics_port: int = 9302
    traces_exporter: str = "none"
    queue_type: str = "classic"  # RabbitMQ queues: classic, or quorum (replicated in a cluster)
    trace_sql: bool = False  # a CLIENT span per SQL statement (costly; for investigations)
    log_format: str = "text"
    process_name: str | None = None
    operator_name: str = "unknown"  # who `orderflow dlq replay` records
    trace_url_template: str | None = None  # the console's link to a trace: {trace_id} in it

    def __post_init__(self) -> None:
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

    @property
    def distributed(self) -> bool:
        """True when a broker URL is configured (RabbitMQ + PostgreSQL mode)."""
        return self.broker_url is not None

    def database_url(self, service: str) -> str:
        """The database URL of ``service``; a SQLite file under ``data_dir`` by default."""
        configured = {
            "orders": self.orders_database_url,
            "invoices": self.invoices_database_url,
        }[service]
        return configured or f"sqlite:///{self.data_dir / service}.sqlite3"

    def port(self, service: str) -> int:
        """The HTTP port of ``service`` (``orders``, ``invoices``, ``gateway`` or ``audit``)."""
        return {
            "orders": self.orders_port,
            "invoices": self.invoices_port,
            "gateway": self.gateway_port,
            "audit": self.audit_port,
        }[service]

    def metrics_port(self, part: str) -> int:
        """The Prometheus port of a worker pool or relay: ``orders-worker``, ``orders-relay``,
        ``invoices-worker`` or ``invoices-relay`` (fronts answer ``/metrics`` on their own)."""
        return {
            "orders-worker": self.orders_worker_metrics_port,
            "invoices-worker": self.invoices_worker_metrics_port,
            "orders-relay": self.orders_relay_metrics_port,
            "invoices-relay": self.invoices_relay_metrics_port,
        }[part]

    def service_url(self, service: str) -> str:
        """Base URL the gateway uses for ``service`` (``orders``, ``invoices`` or the
        ``audit`` part); this machine's port by default."""
        configured = {
            "orders": self.orders_url,
            "invoices": self.invoices_url,
            "audit": self.audit_url,
        }[service]
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return (configured or f"http://{host}:{self.port(service)}").rstrip("/")

    @property
    def dev_key_path(self) -> Path:
        """Where standalone and ``orderflow up`` keep the development signing key."""
        return self.data_dir / "dev-jwt-secret"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see the README's table)."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            broker_url=reader.text("BROKER_URL"),
            orders_database_url=reader.text("ORDERS_DATABASE_URL"),
            invoices_database_url=reader.text("INVOICES_DATABASE_URL"),
            data_dir=Path(reader.text("ORDERFLOW_DATA_DIR") or "var"),
            host=reader.text("ORDERFLOW_HOST") or cls.host,
            orders_port=reader.integer("ORDERS_PORT", cls.orders_port),
            invoices_port=reader.integer("INVOICES_PORT", cls.invoices_port),
            http_threads=reader.integer("HTTP_THREADS", cls.http_threads),
            worker_processes=reader.integer("WORKER_PROCESSES", cls.worker_processes),
            worker_threads=reader.integer("WORKER_THREADS", cls.worker_threads),
            saga_timeout=reader.number("ORDERS_SAGA_TIMEOUT", cls.saga_timeout),
            default_credit_limit=reader.decimal(
                "INVOICES_DEFAULT_CREDIT_LIMIT", cls.default_credit_limit
            ),
            idempotency_ttl=reader.number("IDEMPOTENCY_TTL", cls.idempotency_ttl),
            max_retries=reader.integer("MAX_RETRIES", cls.max_retries, minimum=0),
            max_redeliveries=reader.integer("MAX_REDELIVERIES", cls.max_redeliveries, minimum=0),
            min_backoff_ms=reader.integer("MIN_BACKOFF_MS", cls.min_backoff_ms),
            max_backoff_ms=reader.integer("MAX_BACKOFF_MS", cls.max_backoff_ms),
            relay_batch=reader.integer("RELAY_BATCH", cls.relay_batch),
            relay_poll_interval=reader.number("RELAY_POLL_INTERVAL", cls.relay_poll_interval),
            log_level=(reader.text("LOG_LEVEL") or cls.log_level).upper(),
            jwt_secret=reader.text("ORDERFLOW_JWT_SECRET"),
            jwt_public_key=reader.text("ORDERFLOW_JWT_PUBLIC_KEY"),
            jwt_private_key=reader.text("ORDERFLOW_JWT_PRIVATE_KEY"),
            jwt_issuer=reader.text("ORDERFLOW_JWT_ISSUER") or cls.jwt_issuer,
            jwt_audience=reader.text("ORDERFLOW_JWT_AUDIENCE") or cls.jwt_audience,
            gateway_port=reader.integer("GATEWAY_PORT", cls.gateway_port),
            audit_port=reader.integer("AUDIT_PORT", cls.audit_port),
            orders_url=reader.text("ORDERS_URL"),
            invoices_url=reader.text("INVOICES_URL"),
            audit_url=reader.text("AUDIT_URL"),
            audit_interval=reader.number("AUDIT_INTERVAL", cls.audit_interval),
            gateway_timeout=reader.number("GATEWAY_TIMEOUT", cls.gateway_timeout),
            orders_worker_metrics_port=reader.integer(
                "ORDERS_WORKER_METRICS_PORT", cls.orders_worker_metrics_port
            ),
            invoices_worker_metrics_port=reader.integer(
                "INVOICES_WORKER_METRICS_PORT", cls.invoices_worker_metrics_port
            ),
            orders_relay_metrics_port=reader.integer(
                "ORDERS_RELAY_METRICS_PORT", cls.orders_relay_metrics_port
            ),
            invoices_relay_metrics_port=reader.integer(
                "INVOICES_RELAY_METRICS_PORT", cls.invoices_relay_metrics_port
            ),
            traces_exporter=(reader.text("OTEL_TRACES_EXPORTER") or cls.traces_exporter).lower(),
            trace_sql=reader.flag("ORDERFLOW_TRACE_SQL", cls.trace_sql),
            queue_type=(reader.text("RABBITMQ_QUEUE_TYPE") or cls.queue_type).lower(),
            log_format=(reader.text("LOG_FORMAT") or cls.log_format).lower(),
            process_name=reader.text("ORDERFLOW_PROCESS"),
            operator_name=reader.text("ORDERFLOW_OPERATOR") or _login_name(),
            trace_url_template=reader.text("ORDERFLOW_TRACE_URL_TEMPLATE"),
        )
        if settings.jwt_secret is not None and len(settings.jwt_secret.encode()) < 32:
            raise SettingsError("ORDERFLOW_JWT_SECRET must be at least 32 bytes long")
        if (settings.jwt_secret or "").lower().startswith(PLACEHOLDER):
            raise SettingsError(
                "ORDERFLOW_JWT_SECRET still holds the placeholder of .env.example: "
                "anyone could sign tokens with it; set a random one (openssl rand -hex 32)"
            )
        if settings.broker_url is not None:
            try:
                broker_nodes(settings.broker_url)
            except ValueError as exc:
                raise SettingsError(f"BROKER_URL: {exc}") from None
        if settings.jwt_private_key and not settings.jwt_public_key:
            raise SettingsError("ORDERFLOW_JWT_PRIVATE_KEY needs ORDERFLOW_JWT_PUBLIC_KEY too")
        both = (settings.orders_database_url, settings.invoices_database_url)
        if settings.distributed and not all(both):
            raise SettingsError(
                "BROKER_URL is set, so ORDERS_DATABASE_URL and INVOICES_DATABASE_URL "
                "must be set too (distributed mode runs each part as its own process)"
            )
        return settings

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in a child process."""
        env = {
            "ORDERFLOW_DATA_DIR": str(self.data_dir),
            "ORDERFLOW_HOST": self.host,
            "ORDERS_PORT": str(self.orders_port),
            "INVOICES_PORT": str(self.invoices_port),
            "HTTP_THREADS": str(self.http_threads),
            "WORKER_PROCESSES": str(self.worker_processes),
            "WORKER_THREADS": str(self.worker_threads),
            "ORDERS_SAGA_TIMEOUT": repr(self.saga_timeout),
            "INVOICES_DEFAULT_CREDIT_LIMIT": str(self.default_credit_limit),
            "IDEMPOTENCY_TTL": repr(self.idempotency_ttl),
            "MAX_RETRIES": str(self.max_retries),
            "MAX_REDELIVERIES": str(self.max_redeliveries),
            "MIN_BACKOFF_MS": str(self.min_backoff_ms),
            "MAX_BACKOFF_MS": str(self.max_backoff_ms),
            "RELAY_BATCH": str(self.relay_batch),
            "RELAY_POLL_INTERVAL": repr(self.relay_poll_interval),
            "LOG_LEVEL": self.log_level,
            "ORDERFLOW_JWT_ISSUER": self.jwt_issuer,
            "ORDERFLOW_JWT_AUDIENCE": self.jwt_audience,
            "GATEWAY_PORT": str(self.gateway_port),
            "AUDIT_PORT": str(self.audit_port),
            "AUDIT_INTERVAL": repr(self.audit_interval),
            "GATEWAY_TIMEOUT": repr(self.gateway_timeout),
            "ORDERS_WORKER_METRICS_PORT": str(self.orders_worker_metrics_port),
            "INVOICES_WORKER_METRICS_PORT": str(self.invoices_worker_metrics_port),
            "ORDERS_RELAY_METRICS_PORT": str(self.orders_relay_metrics_port),
            "INVOICES_RELAY_METRICS_PORT": str(self.invoices_relay_metrics_port),
            "OTEL_TRACES_EXPORTER": self.traces_exporter,
            "ORDERFLOW_TRACE_SQL": "true" if self.trace_sql else "false",
            "RABBITMQ_QUEUE_TYPE": self.queue_type,
            "LOG_FORMAT": self.log_format,
            "ORDERFLOW_OPERATOR": self.operator_name,
        }
        if self.trace_url_template is not None:
            env["ORDERFLOW_TRACE_URL_TEMPLATE"] = self.trace_url_template
        optional = {
            "BROKER_URL": self.broker_url,
            "ORDERS_DATABASE_URL": self.orders_database_url,
            "INVOICES_DATABASE_URL": self.invoices_database_url,
            "ORDERFLOW_JWT_SECRET": self.jwt_secret,
            "ORDERFLOW_JWT_PUBLIC_KEY": self.jwt_public_key,
            "ORDERFLOW_JWT_PRIVATE_KEY": self.jwt_private_key,
            "ORDERS_URL": self.orders_url,
            "INVOICES_URL": self.invoices_url,
            "AUDIT_URL": self.audit_url,
        }
        env.update({key: value for key, value in optional.items() if value})
        return env


def _login_name() -> str:
    """The login name of whoever runs the command, or ``unknown`` when there is none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        return "unknown"


class _Reader:
    """Typed access to environment variables with errors that name the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not value > 0 or value == float("inf"):
            raise SettingsError(f"{name} must be a positive finite number, got {raw!r}")
        return value

    def decimal(self, name: str, default: Decimal) -> Decimal:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise SettingsError(f"{name} must be a decimal like 100.00, got {raw!r}") from None
        if not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise SettingsError(f"{name} must be finite with at most 2 decimals, got {raw!r}")
        return value
