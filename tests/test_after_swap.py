"""`watch --exec`'s runner with real shell commands: one run per version, a newer version stops the older run."""

from __future__ import annotations

import queue
import subprocess
from pathlib import Path

from wasmforge.devloop.after_swap import AfterSwap
from watching import poll_until
from wasmforge.events import CycleFinished, Event, ExecFinished, ExecStarted, Reloaded

TIMEOUT = 30.0


class Events:
    def __init__(self) -> None:
        self.queue: "queue.Queue[Event]" = queue.Queue()

    def __call__(self, event: Event) -> None:
        self.queue.put(event)

    def next(self) -> Event:
        return self.queue.get(timeout=TIMEOUT)


def swapped_in(runner: AfterSwap, version: int, path: Path) -> None:
    """The events of a cycle that put ``version`` live, as the loop sends them."""
    runner(Reloaded(version=version, path=path, size=1, size_change=None, seconds=0.0))
    runner(CycleFinished(outcome="reloaded", version=version, seconds=0.1))


def test_each_new_version_gets_a_run_and_stops_the_one_before(tmp_path: Path) -> None:
    events = Events()
    runner = AfterSwap('echo "$WASMFORGE_PLUGIN_VERSION $WASMFORGE_PLUGIN" >> runs.log; exec sleep 3600', tmp_path,
                       events, output=subprocess.DEVNULL)
    try:
        swapped_in(runner, 1, tmp_path / "one.wasm")
        assert events.next() == ExecStarted(command=runner.command, version=1)
        log = tmp_path / "runs.log"
        assert poll_until(lambda: log.exists() and log.read_text().count("\n") == 1, TIMEOUT)
        runner(CycleFinished(outcome="kept_old_version", version=1, seconds=0.1))  # a failed cycle: v1 goes on
        runner(CycleFinished(outcome="unchanged", version=1, seconds=0.1))
        swapped_in(runner, 2, tmp_path / "two.wasm")
        stopped = events.next()
        assert isinstance(stopped, ExecFinished) and (stopped.version, stopped.ok, stopped.stopped) == (1, False, True)
        assert stopped.exit_code == -15  # SIGTERM to the group: sleep (exec'd by the shell) ends at once
        assert events.next() == ExecStarted(command=runner.command, version=2)
        assert poll_until(lambda: log.read_text().count("\n") == 2, TIMEOUT)
    finally:
        runner.close(timeout=TIMEOUT)
    last = events.next()
    assert isinstance(last, ExecFinished) and (last.version, last.stopped) == (2, True)
    assert log.read_text() == f"1 {tmp_path / 'one.wasm'}\n2 {tmp_path / 'two.wasm'}\n"
    assert events.queue.empty()


def test_a_command_that_ends_reports_its_status(tmp_path: Path) -> None:
    events = Events()
    runner = AfterSwap("exit 3", tmp_path, events, output=subprocess.DEVNULL)
    swapped_in(runner, 1, tmp_path / "one.wasm")
    assert isinstance(events.next(), ExecStarted)
    finished = events.next()
    assert isinstance(finished, ExecFinished)
    assert (finished.ok, finished.exit_code, finished.stopped) == (False, 3, False)
    runner.close(timeout=TIMEOUT)


def test_a_command_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    events = Events()
    runner = AfterSwap("trap '' TERM; echo started > ready; while :; do sleep 0.05; done", tmp_path, events,
                       output=subprocess.DEVNULL, grace=0.2)
    swapped_in(runner, 1, tmp_path / "one.wasm")
    assert isinstance(events.next(), ExecStarted)
    assert poll_until(lambda: (tmp_path / "ready").exists(), TIMEOUT)  # the trap is set
    runner.close(timeout=TIMEOUT)
    finished = events.next()
    assert isinstance(finished, ExecFinished) and finished.stopped and finished.exit_code == -9
