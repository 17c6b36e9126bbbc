"""Servers of our own for the cluster scenarios: three RabbitMQ nodes joined in one
cluster, and a PostgreSQL primary with a streaming standby.

Each server runs from Debian's packages already on the machine (``rabbitmq-server``,
PostgreSQL's ``initdb``, ``pg_basebackup`` and ``pg_ctl``), in a directory of its own
under the test's, on ports of its own (``tests.ports``), and is torn down afterwards:
nothing here touches the servers the other tests use. RabbitMQ runs as the invoking
user with its own Erlang cookie; PostgreSQL refuses to run as root, so its commands run
as the ``postgres`` user when we are root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2

from tests.ports import free_port

RABBITMQ_BIN = Path(os.environ.get("ORDERFLOW_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
PG_ROOT = Path("/usr/lib/postgresql")
VHOST = "orderflow-cluster"
STANDBY = "standby1"  # the standby's application_name, as synchronous_standby_names names it


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """``predicate()`` once it is true; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # a server still starting refuses connections
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(interval)


def missing() -> str | None:
    """Why the cluster servers cannot run here, or None."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return f"rabbitmq-server is not in {RABBITMQ_BIN} (Debian package rabbitmq-server)"
    if pg_bin() is None:
        return f"no PostgreSQL server binaries under {PG_ROOT} (Debian package postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser is missing (util-linux): PostgreSQL will not run as root"
    return None


def pg_bin() -> Path | None:
    """The newest PostgreSQL server's binaries on this machine."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


# -- RabbitMQ -----------------------------------------------------------------------------


@dataclasses.dataclass
class RabbitNode:
    """One RabbitMQ node: ``name`` (``ofc1@localhost``), its AMQP and distribution ports,
    its directory, and the process started for it."""

    name: str
    port: int
    dist_port: int
    directory: Path
    home: Path  # holds the Erlang cookie every node and rabbitmqctl share
    process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            # a lost node must not stop the others: quorum queues keep a majority
            "cluster_partition_handling = pause_minority\n"
        )
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")

    def start(self) -> None:
        """Start the node (it keeps its data across restarts) and wait until it runs."""
        self.write_config()
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # the VM takes a moment to answer at all; then it boots RabbitMQ
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                log_tail = (self.directory / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {log_tail}")
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <node> args``; its output, or ``RuntimeError`` with it."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {done.stderr}")
        return done.stdout

    def os_pid(self) -> int | None:
        """The Erlang VM's process id (the node writes it as it boots), or None."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.directory / "pid").read_text().strip())
        return None

    def kill(self) -> None:
        """``kill -9`` the node's Erlang VM, then reap what started it."""
        pid = self.os_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            (self.directory / "pid").unlink(missing_ok=True)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``), killing it if that fails."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop", timeout=60)
        self.kill()


@dataclasses.dataclass
class RabbitCluster:
    """Three (or ``size``) RabbitMQ nodes joined into one cluster, with the vhost
    :data:`VHOST` on which guest may do everything."""

    directory: Path
    size: int = 3
    nodes: list[RabbitNode] = dataclasses.field(default_factory=list)

    def start(self) -> None:
        home = self.directory / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        self.nodes = [
            RabbitNode(
                f"ofc{index}@localhost",
                free_port(),
                free_port(),
                self.directory / f"node{index}",
                home,
            )
            for index in range(1, self.size + 1)
        ]
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        first.ctl("add_vhost", VHOST)
        first.ctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")

    def url(self, node: RabbitNode) -> str:
        return f"amqp://guest:guest@127.0.0.1:{node.port}/{quote(VHOST, safe='')}"

    def broker_url(self) -> str:
        """``BROKER_URL`` naming every node, first node first."""
        return ",".join(self.url(node) for node in self.nodes)

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.process is not None]

    def leader_of(self, queue: str) -> RabbitNode:
        """The node that leads quorum queue ``queue``."""
        asker = self.running()[0]
        out = asker.ctl("list_queues", "-p", VHOST, "name", "leader", "--no-table-headers", "-q")
        for line in out.splitlines():
            name, _, leader = line.strip().partition("\t")
            if name == queue:
                return next(node for node in self.nodes if node.name == leader.strip())
        raise LookupError(f"no quorum queue {queue!r} in {out!r}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- PostgreSQL --------------------------------------------------------------------------


@dataclasses.dataclass
class PgServer:
    """One PostgreSQL server: its data directory and port."""

    directory: Path
    port: int

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def postmaster_pid(self) -> int | None:
        path = self.directory / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(path.read_text().splitlines()[0])
        return None


def _as_postgres(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL command as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False, **options)


def _checked(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")


@dataclasses.dataclass
class PostgresPair:
    """A primary and a streaming standby made from it with ``pg_basebackup``. With
    ``synchronous`` the primary waits for the standby on each commit
    (``synchronous_standby_names``, ``synchronous_commit = on``); without it, the
    standby trails behind (``synchronous_commit = local``)."""

    # PostgreSQL runs as its own user: its directory is outside the test's (root's
    # temporary directories are closed to other users)
    directory: Path = dataclasses.field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="orderflow-pg-"))
    )
    synchronous: bool = True
    primary: PgServer = dataclasses.field(init=False)
    standby: PgServer = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.primary = PgServer(self.directory / "primary", free_port())
        self.standby = PgServer(self.directory / "standby", free_port())

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        bindir = pg_bin()
        assert bindir is not None, missing()
        primary, standby = self.primary, self.standby
        _checked(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(primary.directory),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                ],
                timeout=120,
            ),
            "initdb",
        )
        with (primary.directory / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {primary.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = '512MB'\n"
                "hot_standby = on\nmax_connections = 200\nshared_buffers = '128MB'\n"
                "log_line_prefix = '%m [%p] '\n"
            )
        self._ctl(primary, "start")
        _checked(
            _as_postgres(
                [
                    str(bindir / "pg_basebackup"),
                    "-D",
                    str(standby.directory),
                    "-R",
                    "-X",
                    "stream",
                    "-d",
                    f"host=127.0.0.1 port={primary.port} user=postgres application_name={STANDBY}",
                ],
                timeout=300,
            ),
            "pg_basebackup",
        )
        with (standby.directory / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {standby.port}\n")
        self._ctl(standby, "start")
        if self.synchronous:
            self.sql(primary, f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY}'")
            self.sql(primary, "ALTER SYSTEM SET synchronous_commit = 'on'")
        else:
            self.sql(primary, "ALTER SYSTEM SET synchronous_commit = 'local'")
        self.sql(primary, "SELECT pg_reload_conf()")
        wanted = "sync" if self.synchronous else "async"
        poll(
            lambda: self.sql(primary, "SELECT sync_state FROM pg_stat_replication") == [(wanted,)],
            60,
            f"the standby streaming as {wanted}",
        )

    def _ctl(self, server: PgServer, action: str, *extra: str) -> None:
        bindir = pg_bin()
        assert bindir is not None
        done = _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(server.directory),
                "-l",
                str(server.directory / "server.log"),
                "-w",
                "-t",
                "120",
                action,
                *extra,
            ],
            timeout=150,
        )
        _checked(done, f"pg_ctl {action} on port {server.port}")

    def sql(self, server: PgServer, statement: str, database: str = "postgres") -> list[tuple]:
        """Run one statement (autocommit) on ``server``; its rows, if any."""
        connection = psycopg2.connect(server.dsn(database), connect_timeout=3)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def url(self, database: str) -> str:
        """A database's URL naming both servers: libpq takes the one that accepts writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return (
            f"postgresql://postgres@{hosts}/{database}"
            "?target_session_attrs=read-write&connect_timeout=2"
        )

    def kill_primary(self) -> None:
        """``kill -9`` the primary's postmaster (its backends notice and exit)."""
        pid = self.primary.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        """Promote the standby (``pg_ctl promote``); it then takes writes alone."""
        self._ctl(self.standby, "promote")
        poll(
            lambda: self.sql(self.standby, "SELECT NOT pg_is_in_recovery()") == [(True,)],
            60,
            "the standby to leave recovery",
        )

    def stop(self) -> None:
        for server in (self.standby, self.primary):
            if server.postmaster_pid() is not None:
                with contextlib.suppress(Exception):
                    self._ctl(server, "stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def started(server: RabbitCluster | PostgresPair) -> Iterator[Any]:
    """``server`` started, and stopped (its directory removed) afterwards."""
    try:
        server.start()
        yield server
    finally:
        server.stop()
