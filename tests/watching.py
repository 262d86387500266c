"""Running `wasmforge watch` in a subprocess and reading what it prints, with timeouts, never fixed sleeps.

Tests wait on what watch prints (its events, one per line), each wait with a timeout that only a
failing test waits out. What nothing announces (which processes run, what another process wrote
to a file) is polled, and says so: :func:`poll_until`.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from helpers import REPO

#: Cargo on a loaded 2-core CI machine can be slow; only ever waited out when a test fails.
TIMEOUT = 120.0

ADD_PLUGIN = """use wasmforge_pdk::plugin_fn;

#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {{
    one + two + {offset}
}}
"""


def save(path: Path, text: str) -> None:
    """An editor's in-place save."""
    path.write_text(text)


def add_plugin_source(offset: int) -> str:
    """A plugin whose add(1, 2) returns 3 + ``offset``: each edit is told apart by its answer."""
    return ADD_PLUGIN.format(offset=offset)


def _ctrl_c_reaches_it() -> None:
    """In the child: SIGINT back to its default. A test run started in the background
    (`cmd &` in a script, nohup) inherits SIGINT ignored, and a Python started with
    SIGINT ignored installs no KeyboardInterrupt handler, so interrupt() would hang."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class WatchProcess:
    """`wasmforge watch ARGS` in ``root``; with --json, ``next()`` returns its events one by one."""

    def __init__(self, root: Path, *args: str, stdin: Any = subprocess.DEVNULL) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("NO_COLOR", None)
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wasmforge", "watch", *args],
            cwd=root, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, preexec_fn=_ctrl_c_reaches_it,
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: list[str] = []
        self.seen: list[Any] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def next_line(self, timeout: float = TIMEOUT) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"watch printed nothing for {timeout} s; stderr:\n{''.join(self.stderr)}") from None
        if line is None:
            self.lines.put(None)
            raise AssertionError(f"watch exited ({self.process.poll()}); stderr:\n{''.join(self.stderr)}")
        self.seen.append(line)
        return line

    def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.next_line(timeout))
        self.seen[-1] = event
        return event

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every event up to and including the first for which ``predicate`` holds."""
        events = []
        while True:
            events.append(self.next(timeout))
            if predicate(events[-1]):
                return events

    def until_result(self, value: Any, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every event up to the end of the cycle whose (first) --call result is ``value``."""
        events = self.until(lambda e: e["event"] == "call_result" and e.get("value") == value, timeout)
        return events + self.until_cycle_end(timeout)

    def until_cycle_end(self, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every event up to and including the next cycle_finished."""
        return self.until(lambda e: e["event"] == "cycle_finished", timeout)

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=60)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def build_processes_in(root: Path) -> list[str]:
    """cargo and rustc processes working on the workspace at ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        program = os.path.basename(argv[0].decode(errors="replace"))
        if program in ("cargo", "rustc") and (cwd == str(root) or cwd.startswith(str(root) + os.sep)):
            found.append(f"{entry.name} {program}")
    return found


def poll_until(condition: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """``condition()`` once it is truthy, asked every ``interval`` s; falsy after ``timeout`` s.

    A poll, for states no event announces: the process table, a file another process writes.
    """
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        pause.wait(interval)


def call_through_reloads(hot: Any, call: Callable[[], Any], versions: list[Path], reloads: int) -> list[Any]:
    """Two threads call ``call()`` without pause while ``hot`` is reloaded ``reloads`` times, alternating
    between ``versions``. Returns every result; any failed call fails the test."""
    results: list[list[Any]] = [[], []]
    errors: list[BaseException] = []
    done = threading.Event()
    progress = threading.Condition()

    def caller(into: list[Any]) -> None:
        while not done.is_set():
            try:
                into.append(call())
            except BaseException as error:  # noqa: BLE001 - any failure is what the caller looks for
                errors.append(error)
            with progress:
                progress.notify_all()

    def each_thread_called_again() -> None:
        """Waits until both threads have made a call that started after now (two more results: one may have
        been in flight): so each version serves calls, however the threads are scheduled (on a loaded machine
        they could otherwise sleep through all the reloads)."""
        with progress:
            before = [len(r) for r in results]
            progress.wait_for(lambda: errors or all(len(r) > n + 1 for r, n in zip(results, before)), TIMEOUT)

    threads = [threading.Thread(target=caller, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    try:
        each_thread_called_again()
        for i in range(reloads):
            hot.reload_from(versions[(i + 1) % len(versions)])
            each_thread_called_again()
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT)
    assert errors == [], errors[:3]
    assert all(results), "a thread made no call"
    return results[0] + results[1]
