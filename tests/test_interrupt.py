"""Ctrl-C stops a plugin call: KeyboardInterrupt in a Python host, exit 130 from `wasmforge call`.

Each test runs a real Python process, waits until its wasm is running (the
wasm itself says so), sends it a real SIGINT, and checks what the process
did. Without the feature the process loops forever: communicate() then
times out and the test fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
import wasmtime

import wasmforge
from helpers import REPO, assert_one_line_error
from wasmforge.limits import MAX_DEADLINE_EPOCHS, MAX_TIMEOUT

HOSTILE = Path(__file__).parent / "hostile"
PATIENCE = 120  # seconds to wait for an event that should take milliseconds


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WAT plugins of tests/hostile, compiled to .wasm files."""
    directory = tmp_path_factory.mktemp("interrupt")
    for name in ("wasi_loops", "wasi_start_loops", "asks_host"):
        (directory / f"{name}.wasm").write_bytes(wasmtime.wat2wasm((HOSTILE / f"{name}.wat").read_text()))
    return directory


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def interrupt_when(process: "subprocess.Popen[str]", started: Callable[[], bool]) -> tuple[str, str]:
    """Sends SIGINT once ``started()``, then the process's output; fails if it does not end."""
    wait_for(lambda: started() or process.poll() is not None, "the wasm to start")
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("Ctrl-C did not stop the call")


def run_script(script: str, *args: str) -> tuple["subprocess.Popen[str]", list[str]]:
    """A Python process running ``script``; the lines it prints are collected as they come."""
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment())
    return process, []


def first_line_is(process: "subprocess.Popen[str]", expected: str) -> Callable[[], bool]:
    """A started() that reads the process's first line (blocking until there is one)."""
    def started() -> bool:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == expected + "\n", (line, process.stderr.read() if process.stderr else "")
        return True
    return started


CALL_SCRIPT = """
    import sys, wasmforge
    options = eval(sys.argv[2])
    plugin = wasmforge.load(sys.argv[1], stdout="inherit", **options)
    try:
        plugin.loop_forever()  # prints "started", then loops
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    print(plugin.answer(), flush=True)  # the plugin still answers, on a fresh instance
"""


@pytest.mark.parametrize("options", [
    {}, {"timeout": 86400}, {"fuel": 10**15}, {"cancellable": True}, {"instances": 2}, {"memory_limit": "1MiB"},
], ids=["no-limits", "timeout", "fuel", "cancellable", "instances", "memory-limit"])
def test_ctrl_c_raises_keyboard_interrupt_from_a_running_call(modules: Path, options: dict) -> None:
    process, _ = run_script(CALL_SCRIPT, str(modules / "wasi_loops.wasm"), repr(options))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert (out, process.returncode) == ("KeyboardInterrupt\n42\n", 0), err


@pytest.mark.parametrize("options", [{}, {"timeout": 86400}], ids=["no-limits", "timeout"])
def test_ctrl_c_stops_a_call_of_a_plugin_loaded_on_another_thread(modules: Path, options: dict) -> None:
    process, _ = run_script("""
        import sys, threading, wasmforge
        loaded = []
        loader = threading.Thread(target=lambda: loaded.append(
            wasmforge.load(sys.argv[1], stdout="inherit", **eval(sys.argv[2]))))
        loader.start()
        loader.join()
        try:
            loaded[0].loop_forever()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        print(loaded[0].answer(), flush=True)
    """, str(modules / "wasi_loops.wasm"), repr(options))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert (out, process.returncode) == ("KeyboardInterrupt\n42\n", 0), err


def test_ctrl_c_stops_a_start_function_that_loops(modules: Path) -> None:
    process, _ = run_script("""
        import sys, wasmforge
        try:
            wasmforge.load(sys.argv[1], stdout="inherit")  # its start function prints "started", then loops
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        print(wasmforge.load(sys.argv[2], stdout="inherit").answer(), flush=True)
    """, str(modules / "wasi_start_loops.wasm"), str(modules / "wasi_loops.wasm"))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert (out, process.returncode) == ("KeyboardInterrupt\n42\n", 0), err


def test_ctrl_c_stops_a_call_that_keeps_calling_host_functions(modules: Path) -> None:
    # Python may run the SIGINT handler inside the host function (and lose its exception
    # there): the interrupted call still raises KeyboardInterrupt.
    process, _ = run_script("""
        import sys, wasmforge
        calls = []
        def keep_going():
            if not calls:
                print("started", flush=True)
            calls.append(1)
            return 1
        plugin = wasmforge.load(sys.argv[1], host_functions={"keep_going": keep_going})
        try:
            plugin.spin_with_host()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        print(plugin.answer(), flush=True)
    """, str(modules / "asks_host.wasm"))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert (out, process.returncode) == ("KeyboardInterrupt\n42\n", 0), err


def test_ctrl_c_leaves_calls_on_other_threads_alone(modules: Path) -> None:
    # Both plugins have no limits, so they share one engine: advancing its epoch for the
    # main thread's call must not stop the worker's call.
    process, _ = run_script("""
        import sys, threading, wasmforge
        worker_inside, stop, outcome = threading.Event(), threading.Event(), []
        def keep_going():
            worker_inside.set()
            return 0 if stop.is_set() else 1
        busy = wasmforge.load(sys.argv[1], host_functions={"keep_going": keep_going})
        def work():
            try:
                outcome.append(busy.spin_with_host())
            except BaseException as error:
                outcome.append(error)
        worker = threading.Thread(target=work)
        worker.start()
        worker_inside.wait()
        looping = wasmforge.load(sys.argv[2], stdout="inherit")
        try:
            looping.loop_forever()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
        stop.set()
        worker.join()
        print(type(outcome[0]).__name__, outcome[0] > 0 if isinstance(outcome[0], int) else outcome[0], flush=True)
    """, str(modules / "asks_host.wasm"), str(modules / "wasi_loops.wasm"))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert (out, process.returncode) == ("KeyboardInterrupt\nint True\n", 0), err


def test_a_sigint_handler_of_the_programs_own_runs_and_the_call_is_cancelled(modules: Path) -> None:
    process, _ = run_script("""
        import signal, sys, wasmforge
        signal.signal(signal.SIGINT, lambda number, frame: print("handler ran", flush=True))
        plugin = wasmforge.load(sys.argv[1], stdout="inherit")
        try:
            plugin.loop_forever()
        except wasmforge.PluginCancelled as error:
            print(error, flush=True)
        print(plugin.answer(), flush=True)
    """, str(modules / "wasi_loops.wasm"))
    out, err = interrupt_when(process, first_line_is(process, "started"))
    assert process.returncode == 0, err
    assert out.splitlines() == ["handler ran", "loop_forever() in wasi_loops.wasm was interrupted by SIGINT (Ctrl-C)",
                                "42"]


def captured_output_says_started(directory: Path) -> Callable[[], bool]:
    """The CLI captures a WASI plugin's output in a temporary file until the call returns: look there."""
    def started() -> bool:
        return any(b"started" in path.read_bytes() for path in directory.glob("wasmforge-stdout-*"))
    return started


@pytest.mark.parametrize("flags", [[], ["--timeout", "86400"], ["--fuel", str(10**15)]],
                         ids=["no-limits", "timeout", "fuel"])
@pytest.mark.parametrize("plugin, function", [("wasi_loops", "loop_forever"), ("wasi_start_loops", "answer")],
                         ids=["call", "start-function"])
def test_ctrl_c_in_wasmforge_call_exits_130(modules: Path, tmp_path: Path, plugin: str, function: str,
                                            flags: list[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "wasmforge", "call", "--plugin", str(modules / f"{plugin}.wasm"), function, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=environment(TMPDIR=str(tmp_path)),
    )
    out, err = interrupt_when(process, captured_output_says_started(tmp_path))
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(result, 130, "interrupted")
    assert out == "started\n"  # what it printed before Ctrl-C is still shown


# ---- cancel() -----------------------------------------------------------------------------------


def test_a_deadline_is_a_bounded_number_of_epochs_away_whatever_the_timeout() -> None:
    # cancel() and Ctrl-C advance the epoch past every deadline, one step at a time:
    # at timeout=86400 that was 8,640,001 steps (31 s); now it is at most 1001.
    for timeout in (0.2, 10, 86400, MAX_TIMEOUT):
        limits = wasmforge.Limits(timeout=timeout)
        assert limits.deadline_ticks <= MAX_DEADLINE_EPOCHS + 1
        # ...and a deadline still comes no earlier than the timeout.
        assert (limits.deadline_ticks - 1) * limits.epoch_period * wasmforge.limits.TICK >= timeout


def test_cancel_stops_a_call_with_a_day_long_time_limit(modules: Path) -> None:
    import threading

    with wasmforge.load(modules / "wasi_loops.wasm", timeout=86400, stdout=lambda data: None) as plugin:
        outcome: list = []
        worker = threading.Thread(target=lambda: outcome.append(_failure_of(plugin.loop_forever)))
        worker.start()
        deadline = time.monotonic() + PATIENCE
        while worker.is_alive() and time.monotonic() < deadline:
            plugin.cancel()
            worker.join(timeout=0.05)
        assert not worker.is_alive()
        assert isinstance(outcome[0], wasmforge.PluginCancelled), outcome
        assert plugin.answer() == 42


def _failure_of(function: Callable[[], object]) -> Optional[BaseException]:
    try:
        function()
    except BaseException as error:  # noqa: BLE001 - the test inspects it
        return error
    return None


def test_interruptible_is_true_or_false() -> None:
    with pytest.raises(wasmforge.OptionError, match="interruptible must be True or False, got 'no'"):
        wasmforge.Limits(interruptible="no")  # type: ignore[arg-type]


# ---- Ctrl-C in the instant a call takes its instance ---------------------------------------------
#
# Python raises KeyboardInterrupt at the first check after a C call returns: possibly right after the
# call path took the plugin's lock (or a pooled instance) and before anything held it. These stand-ins
# raise exactly there, every time, so the tests do not depend on when a real SIGINT lands.

ADD_AND_MEET = wasmtime.wat2wasm("""(module
  (import "env" "meet" (func $meet))
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "meet") (result i32) call $meet i32.const 1))""")


class InterruptedAcquire:
    """A lock whose acquire() is interrupted by Ctrl-C: after taking the real lock, or while waiting for it."""

    def __init__(self, real: object, *, takes_it: bool) -> None:
        self.real = real
        self.takes_it = takes_it

    def acquire(self, *args: object) -> bool:
        if self.takes_it:
            self.real.acquire()  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    def release(self) -> None:
        self.real.release()  # type: ignore[attr-defined]


def lock_is_free(lock: object) -> bool:
    """Whether another thread can take ``lock`` (within a generous wait)."""
    import threading

    got: list[bool] = []

    def take() -> None:
        got.append(lock.acquire(timeout=PATIENCE / 10))  # type: ignore[attr-defined]
        if got[-1]:
            lock.release()  # type: ignore[attr-defined]

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return got == [True]


def test_ctrl_c_right_after_the_lean_path_takes_the_lock_leaves_it_free() -> None:
    plugin = wasmforge.Plugin.from_bytes(ADD_AND_MEET, name="add.wasm", host_functions={"meet": lambda: None})
    holder = plugin._instances
    holder.solo = 0  # as if another thread had called: the lean path's half that takes the lock
    real = holder.lock
    holder.lock = InterruptedAcquire(real, takes_it=True)
    with pytest.raises(KeyboardInterrupt):
        plugin.add(1, 2)  # the call path is built now, with the interrupted acquire
    assert lock_is_free(real), "a KeyboardInterrupt right after acquire() left the plugin's lock held"
    holder.lock = real
    plugin.close()


def test_ctrl_c_while_waiting_for_the_lock_releases_nothing() -> None:
    import threading

    plugin = wasmforge.Plugin.from_bytes(ADD_AND_MEET, name="add.wasm", host_functions={"meet": lambda: None})
    holder = plugin._instances
    holder.solo = 0  # as if another thread had called: the lean path's half that takes the lock
    real = holder.lock
    holder.lock = InterruptedAcquire(real, takes_it=False)
    holding, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:  # another thread holds the lock while the main thread's acquire() is interrupted
        with real:
            holding.set()
            done.wait(PATIENCE)

    def release_check() -> None:
        try:
            hold()
        except BaseException as error:  # noqa: BLE001 - a release that failed: the test reports it
            failures.append(error)

    thread = threading.Thread(target=release_check)
    thread.start()
    assert holding.wait(PATIENCE)
    with pytest.raises(KeyboardInterrupt):  # not RuntimeError: the lock it never took is not released
        plugin.add(1, 2)
    done.set()
    thread.join()
    assert failures == []
    holder.lock = real
    plugin.close()


def test_ctrl_c_right_after_a_pooled_call_takes_its_instance_gives_it_back() -> None:
    import threading

    both_inside = threading.Barrier(2, timeout=PATIENCE)
    plugin = wasmforge.Plugin.from_bytes(ADD_AND_MEET, name="pool.wasm", instances=2,
                                         host_functions={"meet": lambda: both_inside.wait()})
    holder = plugin._instances
    acquire = holder.acquire

    def interrupted(taken: list[object]) -> object:
        acquire(taken)
        raise KeyboardInterrupt

    holder.acquire = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        plugin.add(1, 2)
    del holder.acquire  # the class's own again, for the calls built from now on
    results: list[object] = []
    # Both instances are there: two calls meet inside wasm at the same time.
    threads = [threading.Thread(target=lambda: results.append(plugin.call("meet"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    assert results == [1, 1], "a KeyboardInterrupt right after acquire() lost one of the pool's instances"
    plugin.close()
