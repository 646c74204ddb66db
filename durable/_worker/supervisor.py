"""Run N worker processes under one supervisor: restart the ones that die, stop them all.

Children are started with ``multiprocessing``'s ``spawn`` method rather than by re-invoking
the command line, because the app reaches a child the way its user named it: a
``module:attr`` string, or a module-level factory, including one defined in the very script
that calls ``run_workers`` (spawn re-imports that script as ``__mp_main__``, which a
re-invoked ``durable worker`` cannot do). Not ``fork``: a forked child would inherit the
parent's event loop, connections and threads, which no asyncpg pool survives.

The supervisor is a plain blocking loop on the children's sentinels and a self-pipe that
signals wake. SIGTERM or SIGINT is forwarded to every child, which drains its runs as a
single worker does; a child still alive ``stop_timeout`` seconds later, or after a second
signal, gets SIGKILL (its runs resume elsewhere once their leases expire). Children run in
their own process group, so a Ctrl-C reaches them once, through the supervisor, and each
stops by itself if the supervisor disappears (``supervised_parent``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["USAGE_EXIT", "Supervisor", "supervised_parent"]

_log = logging.getLogger("durable.supervisor")

USAGE_EXIT = 2
"""A child exiting with this status was misconfigured: restarting it cannot help."""
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
HEALTHY_SECONDS = 60.0
"""A child that lived this long died of something new: its restart backoff starts over."""

_supervisor_pid: list[int] = []  # set once, in a child, by _child_main


def supervised_parent() -> int | None:
    """The supervisor's pid in a child it started (None in any other process)."""
    return _supervisor_pid[0] if _supervisor_pid else None


def _child_main(target: Callable[[], int], supervisor: int) -> None:
    _supervisor_pid[:] = [supervisor]
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor only, which forwards it
    raise SystemExit(target())


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = 0.0  # None: not to be started again


class Supervisor:
    """Keeps ``processes`` children running ``target()`` (picklable, returns an exit status)."""

    def __init__(
        self,
        target: Callable[[], int],
        *,
        processes: int,
        stop_timeout: float = 60.0,
        name: str = "durable-worker",
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self._target = target
        self._slots = [_Slot(i) for i in range(processes)]
        self._stop_timeout = stop_timeout
        self._name = name
        self._context = multiprocessing.get_context("spawn")
        self._signals: list[int] = []
        self._stopping_since: float | None = None
        self._killed = False
        self.exit_status = 0

    def run(self) -> int:
        """Start the children and supervise them until they are all stopped; returns the
        supervisor's exit status (0 unless it failed itself, 2 for a misconfigured app)."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = self._install_signals(wake_write.fileno())
        try:
            self._loop(wake_read)
        finally:
            self._restore_signals(previous)
            wake_read.close()
            wake_write.close()
        return self.exit_status

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self, wake: socket.socket) -> None:
        while True:
            self._handle_signals()
            self._reap()
            if self._stopping_since is not None and not self._alive():
                return
            self._start_due()
            self._escalate()
            waitables: list[Any] = [p.sentinel for p in self._processes()]
            multiprocessing.connection.wait([*waitables, wake], self._next_timeout())
            with contextlib.suppress(BlockingIOError):  # drained: nothing more to read
                while wake.recv(512):
                    pass

    def _processes(self) -> list[BaseProcess]:
        return [s.process for s in self._slots if s.process is not None]

    def _alive(self) -> bool:
        return any(s.process is not None for s in self._slots)

    def _next_timeout(self) -> float | None:
        now = time.monotonic()
        moments = [s.restart_at for s in self._slots if s.process is None and s.restart_at]
        if self._stopping_since is not None and not self._killed:
            moments.append(self._stopping_since + self._stop_timeout)
        return max(0.0, min(moments) - now) if moments else None

    def _start_due(self) -> None:
        if self._stopping_since is not None:
            return
        now = time.monotonic()
        for slot in self._slots:
            if slot.process is None and slot.restart_at is not None and slot.restart_at <= now:
                try:
                    self._start(slot)
                except OSError as exc:  # out of fds or memory: the supervisor's own failure
                    _log.error("cannot start a worker process (%s); stopping", exc)
                    slot.restart_at = None
                    self.exit_status = 1
                    self._begin_stop(signal.SIGTERM)
                    return

    def _start(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=_child_main,
            args=(self._target, os.getpid()),
            name=f"{self._name}-{slot.index}",
            daemon=False,
        )
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        _log.info("started worker process %s (pid %s)", slot.index, process.pid)

    def _reap(self) -> None:
        for slot in self._slots:
            process = slot.process
            if process is None or process.is_alive():
                continue
            process.join()
            code = process.exitcode
            slot.process = None
            if self._stopping_since is not None:
                _log.info("worker process %s (pid %s) stopped: %s", slot.index, process.pid,
                          _describe(code))  # fmt: skip
                continue
            if code == USAGE_EXIT:
                _log.error("worker process %s exited with a usage error; stopping", slot.index)
                self.exit_status = USAGE_EXIT
                self._begin_stop(signal.SIGTERM)
                continue
            self._schedule_restart(slot, code, process.pid)

    def _schedule_restart(self, slot: _Slot, code: int | None, pid: int | None) -> None:
        now = time.monotonic()
        slot.failures = 1 if now - slot.started_at >= HEALTHY_SECONDS else slot.failures + 1
        delay = min(FIRST_BACKOFF * 2 ** (slot.failures - 1), MAX_BACKOFF)
        slot.restart_at = now + delay
        _log.warning(
            "worker process %s (pid %s) died: %s; restarting it in %.1fs",
            slot.index, pid, _describe(code), delay,
        )  # fmt: skip

    # -- stopping ------------------------------------------------------------------------------

    def _install_signals(self, wake_fd: int) -> dict[int, Any]:
        previous: dict[int, Any] = {signal.SIGINT: None, signal.SIGTERM: None}
        for signum in previous:
            previous[signum] = signal.signal(signum, self._on_signal)
        previous[-1] = signal.set_wakeup_fd(wake_fd)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # handled by the loop, woken through the wakeup fd

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if self._stopping_since is None:
                _log.warning("received %s; stopping the worker processes", name)
                self._begin_stop(signum)
            elif signum == signal.SIGINT and time.monotonic() - self._stopping_since >= 1.0:
                # A second Ctrl-C means now. A repeated SIGTERM does not: process managers
                # may send one to the supervisor and one through a wrapper like `uv run`.
                _log.warning("received %s again; killing the worker processes", name)
                self._kill_all()

    def _begin_stop(self, signum: int) -> None:
        self._stopping_since = time.monotonic()
        for process in self._processes():
            _send(process, signum)

    def _escalate(self) -> None:
        if self._stopping_since is None or self._killed:
            return
        if time.monotonic() - self._stopping_since >= self._stop_timeout:
            _log.warning("worker processes still running %.0fs after the stop; killing them",
                         self._stop_timeout)  # fmt: skip
            self._kill_all()

    def _kill_all(self) -> None:
        self._killed = True
        for process in self._processes():
            _send(process, signal.SIGKILL)


def _send(process: BaseProcess, signum: int) -> None:
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped next turn
        os.kill(process.pid, signum)


def _describe(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"
