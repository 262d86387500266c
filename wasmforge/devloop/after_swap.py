"""`wasmforge watch --exec CMD`: a shell command run after each good swap, in the background.

Feed :class:`AfterSwap` every event of the reload loop. When a cycle ends with
a new version serving, it starts the command (through the shell, in the
workspace, with ``WASMFORGE_PLUGIN`` naming the new .wasm and
``WASMFORGE_PLUGIN_VERSION`` its version) and reports
:class:`~wasmforge.events.ExecStarted` and, when it ends,
:class:`~wasmforge.events.ExecFinished`.

The reload loop never waits for it: the next build runs while the command
does. A command still running when a newer version goes live is stopped
(SIGTERM to its process group, SIGKILL after ``grace`` seconds) and the newer
version's starts once it is gone: a result always describes the version it
ran against, and a failed build or a refused version leaves the command
testing the version still serving to finish.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Callable, Optional, Union

from ..events import CycleFinished, Event, ExecFinished, ExecStarted, Reloaded

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]
Output = Union[None, int, IO[str]]


class _Run:
    """One run of the command, for one version."""

    def __init__(self, version: int, plugin: Optional[Path], after: Optional["_Run"]) -> None:
        self.version = version
        self.plugin = plugin
        #: The run this one waits for: the previous version's, being stopped.
        self.after = after
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None


class AfterSwap:
    """Runs ``command`` after each cycle that swapped in a new version; call it with every event."""

    def __init__(self, command: str, cwd: Path, emit: Emit, *, output: Output = None, grace: float = 2.0) -> None:
        self.command = command
        self.cwd = cwd
        self.emit = emit
        #: Where the command's stdout and stderr go (a file or descriptor; None: this process's own).
        self.output = output
        self.grace = grace
        self._lock = threading.Lock()
        self._current: Optional[_Run] = None
        self._plugin: Optional[Path] = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<AfterSwap {self.command!r}>"

    def __call__(self, event: Event) -> None:
        if isinstance(event, Reloaded):
            self._plugin = event.path
        elif isinstance(event, CycleFinished) and event.outcome == "reloaded":
            self.start(event.version, self._plugin)

    def start(self, version: int, plugin: Optional[Path] = None) -> None:
        """Runs the command for ``version``, once the run for an older version (stopped now) has ended."""
        with self._lock:
            if self._closed:
                return
            previous = self._current
            if previous is not None:
                previous.stop.set()
            run = self._current = _Run(version, plugin, previous)
            run.thread = threading.Thread(target=self._run, args=(run,), name=f"wasmforge-exec-v{version}", daemon=True)
            run.thread.start()

    def close(self, timeout: Optional[float] = None) -> None:
        """Stops a running command and waits for it to end."""
        with self._lock:
            self._closed = True
            run = self._current
        if run is not None:
            run.stop.set()
            if run.thread is not None:
                run.thread.join(timeout)

    # ---- one run ----

    def _run(self, run: _Run) -> None:
        if run.after is not None and run.after.thread is not None:
            run.after.thread.join()  # its exec_finished comes before this one's exec_started
        run.after = None
        if run.stop.is_set():  # superseded before it began: a newer version is already serving
            return
        env = dict(os.environ, WASMFORGE_PLUGIN_VERSION=str(run.version))
        if run.plugin is not None:
            env["WASMFORGE_PLUGIN"] = str(run.plugin)
        started = time.perf_counter()
        try:
            process = subprocess.Popen(
                self.command, shell=True, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=self.output, stderr=self.output, start_new_session=True,
            )
        except OSError as error:
            log.error("--exec %r could not start: %s", self.command, error.strerror or error)
            self.emit(ExecFinished(command=self.command, version=run.version, ok=False, exit_code=127,
                                   seconds=time.perf_counter() - started))
            return
        self.emit(ExecStarted(command=self.command, version=run.version))
        code = _wait_or_stop(process, run.stop, self.grace)
        stopped = run.stop.is_set() and code != 0
        self.emit(ExecFinished(command=self.command, version=run.version, ok=code == 0, exit_code=code,
                               seconds=time.perf_counter() - started, stopped=stopped))


def _wait_or_stop(process: "subprocess.Popen[bytes]", stop: threading.Event, grace: float) -> int:
    """The exit status, once the process ends by itself or, after ``stop`` is set, because it was stopped."""
    while True:
        try:
            return process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if stop.is_set():
                break
    _signal_group(process, signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        return process.wait()


def _signal_group(process: "subprocess.Popen[bytes]", signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (AttributeError, OSError):  # no process groups here, or already gone
        if signum == signal.SIGKILL:
            process.kill()
        else:
            process.terminate()
