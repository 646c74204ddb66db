"""A primary and a streaming hot standby: two real PostgreSQL servers on this machine, set up
from nothing for the failover and read-replica tests, and removed afterwards.

The binaries are those of ``$DURABLE_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``
(Debian's layout) that has ``initdb``, ``pg_ctl`` and ``pg_basebackup``. PostgreSQL refuses
to run as root, so under root every server command runs as the ``postgres`` system user
(``runuser``), in a directory that user owns. Ports are free ephemeral ones; the servers
listen on 127.0.0.1 only. ``fsync`` is off: the tests kill processes, never the machine, so
what a process wrote survives it either way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PG_BIN_ENV", "ReplicatedPostgres", "Server", "unavailable"]

PG_BIN_ENV = "DURABLE_PG_BIN"
_TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres", "psql")
_SYSTEM_USER = "postgres"
_SETUP_TIMEOUT = 60.0


def _bin_dir() -> Path | None:
    explicit = os.environ.get(PG_BIN_ENV)
    if explicit:
        return Path(explicit)
    found = [p / "bin" for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()]
    usable = [p for p in found if all((p / tool).exists() for tool in _TOOLS)]
    return max(usable, key=lambda p: int(p.parent.name), default=None)


def unavailable() -> str | None:
    """Why the servers cannot be set up on this machine, or None when they can."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return f"no PostgreSQL server binaries (set {PG_BIN_ENV} or install postgresql)"
    missing = [tool for tool in _TOOLS if not (bin_dir / tool).exists()]
    if missing:
        return f"{bin_dir} lacks {', '.join(missing)}"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {_SYSTEM_USER!r} user to run PostgreSQL"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One PostgreSQL server: its data directory and port."""

    name: str
    data: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


class ReplicatedPostgres:
    """A primary and one streaming standby; ``synchronous`` makes every commit wait until
    the standby has flushed it (``synchronous_standby_names = '*'``)."""

    def __init__(self, *, synchronous: bool) -> None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self.bin_dir = _bin_dir()
        self.synchronous = synchronous
        # Not pytest's tmp_path: its base directory is 0700 to the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="durable-repl-"))
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(_SYSTEM_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.primary = Server("primary", self.root / "primary", _free_port())
        self.standby = Server("standby", self.root / "standby", _free_port())
        self._stalled_receiver: int | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """initdb the primary, start it, clone the standby with pg_basebackup, start it and
        wait until it streams (synchronously, when asked)."""
        self._tool(
            "initdb", "-D", str(self.primary.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self._configure(self.primary)
        self._pg_ctl(self.primary, "start")
        self._tool(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(self.standby.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (self.standby.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.standby.port}\ncluster_name = 'standby'\n")
        self._pg_ctl(self.standby, "start")
        streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        self._wait_for(self.primary, streaming, "1")
        if self.synchronous:
            self.sql(self.primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            self.sql(self.primary, "SELECT pg_reload_conf()")
            sync = "SELECT string_agg(sync_state, ',') FROM pg_stat_replication"
            self._wait_for(self.primary, sync, "sync")

    def stop(self) -> None:
        """Stop whatever still runs (immediately: the data is thrown away) and remove it all."""
        for server in (self.primary, self.standby):
            if (server.data / "postmaster.pid").exists():
                stop = ("-D", str(server.data), "-m", "immediate", "-w", "stop")
                self._tool("pg_ctl", *stop, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def stall_replication(self) -> None:
        """Freeze the standby's WAL receiver (SIGSTOP): the primary goes on committing, and
        with asynchronous replication acknowledging, what the standby never receives."""
        pid = int(self.sql(self.standby, "SELECT pid FROM pg_stat_wal_receiver"))
        os.kill(pid, signal.SIGSTOP)
        self._stalled_receiver = pid

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and every process it started, at once: no
        shutdown, no goodbye to clients or to the standby. A stalled WAL receiver dies
        with it, and with it the WAL it had not yet read."""
        pid = self.primary.postmaster_pid()
        if pid is None:
            raise RuntimeError("the primary is not running")
        os.kill(pid, signal.SIGSTOP)  # no new child between the listing and the kill
        victims = [pid, *_children(pid)]
        if self._stalled_receiver is not None:
            victims.append(self._stalled_receiver)
            self._stalled_receiver = None
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(v) for v in victims):
            if time.monotonic() > deadline:
                raise RuntimeError(f"primary processes {victims} outlived SIGKILL")
            time.sleep(0.01)

    def stop_server(self, server: Server) -> None:
        """Stop one server cleanly (``pg_ctl stop -m fast``)."""
        self._tool("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")

    def promote(self) -> None:
        """Promote the standby and wait until it accepts writes."""
        self._tool("pg_ctl", "-D", str(self.standby.data), "-w", "-t", "30", "promote")

    # -- reading the servers ------------------------------------------------------------------

    def multi_host_url(self, database: str = "postgres", attrs: str = "read-write") -> str:
        """One URL naming both servers, primary first, as libpq and asyncpg take it."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs={attrs}"

    def sql(self, server: Server, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; its output, unaligned, without headers."""
        out = self._tool(
            "psql", "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
            "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement,
        )  # fmt: skip
        return out.strip()

    # -- helpers ----------------------------------------------------------------------------

    def _configure(self, server: Server) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(server.port),
            "unix_socket_directories": f"'{self.root}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "hot_standby": "on",
            "fsync": "off",
            "shared_buffers": "32MB",
            "max_connections": "60",
            "wal_keep_size": "128MB",
            "cluster_name": f"'{server.name}'",
        }
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl(self, server: Server, action: str) -> None:
        log = self.root / f"{server.name}.log"
        self._tool("pg_ctl", "-D", str(server.data), "-l", str(log), "-w", "-t", "30", action)

    def _wait_for(self, server: Server, query: str, expected: str) -> None:
        deadline = time.monotonic() + _SETUP_TIMEOUT
        while (got := self.sql(server, query)) != expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{query!r} on the {server.name} gave {got!r}, not {expected!r}")
            time.sleep(0.05)

    def _tool(self, tool: str, *args: str, check: bool = True) -> str:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", _SYSTEM_USER, "--", *command]
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=_SETUP_TIMEOUT,
            cwd=self.root,
        )  # fmt: skip
        if check and done.returncode != 0:
            said = done.stderr.strip() or done.stdout.strip()
            raise RuntimeError(f"{tool} failed ({done.returncode}): {said}{self.log_tail()}")
        return done.stdout

    def log_tail(self) -> str:
        """The end of both servers' logs, for a failing test's report."""
        return "".join(
            f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}"
            for log in sorted(self.root.glob("*.log"))
        )


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody has reaped yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
