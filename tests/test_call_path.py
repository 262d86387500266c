"""The lean call path (issue 17): the same answers, errors and traps as the general path,
no lock while one thread alone calls, and still one call at a time per store once others do.

No cargo: the plugins are WAT. Nothing here is timed; bench/ measures what this path saves.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import pytest
import wasmtime

import wasmforge

PATIENCE = 60.0

PROBE_WAT = """
(module
  (import "env" "probe" (func $probe (param i32)))
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "wide") (param i64 f64) (result f64) local.get 0 f64.convert_i64_s local.get 1 f64.add)
  (func (export "nothing"))
  (func (export "boom") (param i32) (result i32) unreachable)
  (func (export "divide") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "pair") (param i32) (result i32 i32) local.get 0 local.get 0)
  (func (export "work") (param i32) (result i32)
    local.get 0 call $probe
    local.get 0 i32.const 1 i32.add)
  (func (export "spin") (loop br 0))
  (func (export "work_pair") (param i32) (result i32 i32)
    local.get 0 call $probe
    local.get 0 local.get 0 i32.const 1 i32.add)
)
"""


def _probe_plugin(probe: Callable[[int], None], **options: Any) -> wasmforge.Plugin:
    limits = wasmforge.Limits(**options) if options else None
    return wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(PROBE_WAT)), name="probe.wasm",
                                       host_functions={"env.probe": probe}, limits=limits)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("value", call())
    except Exception as error:  # noqa: BLE001 - compared between the two paths
        return (type(error).__name__, str(error))


CASES: list[tuple[str, tuple[Any, ...]]] = [
    ("add", (1, 2)), ("add", (2**31 - 1, 1)), ("add", (-5, 3)), ("add", (2**32 - 1, 1)),
    ("add", (2**32, 0)), ("add", (1,)), ("add", (1, 2, 3)), ("add", ()), ("add", ("1", 2)), ("add", (1.0, 2)),
    ("add", (True, 2)), ("wide", (2**62, 0.5)), ("wide", (1, 2)), ("wide", (1, "x")), ("nothing", ()),
    ("nothing", (1,)), ("boom", (1,)), ("add", (4, 5)), ("divide", (1, 0)), ("divide", (-2**31, -1)),
    ("divide", (7, 2)), ("pair", (3,)),
]


def test_the_lean_path_answers_and_fails_as_the_general_path_does() -> None:
    """Every case on the lean path (no limits) and the general one (a time limit): the same value or error,
    with plugin.NAME, plugin.function(NAME) and plugin.call_raw alike."""
    with _probe_plugin(lambda value: None) as lean, _probe_plugin(lambda value: None, timeout=60) as general:
        for name, args in CASES:
            expected = _outcome(lambda: general.call(name, *args))
            assert _outcome(lambda: getattr(lean, name)(*args)) == expected, (name, args)
            assert _outcome(lambda: lean.function(name)(*args)) == expected, (name, args)
            assert _outcome(lambda: lean.call_raw(name, *args)) == _outcome(lambda: general.call_raw(name, *args))
        # A trap threw the instance away on both; the next call starts on a fresh one.
        assert lean.add(1, 2) == general.add(1, 2) == 3


def test_a_host_function_may_call_the_plugin_again_on_either_path() -> None:
    """Re-entry from a host function: on the solo path (one thread) and after another thread has called."""
    seen: list[int] = []
    plugin: wasmforge.Plugin

    def probe(value: int) -> None:
        seen.append(plugin.add(value, 100))
        if value == 7:
            plugin.boom(0)  # a trap inside: this instance goes, the outer call still returns

    with _probe_plugin(probe) as plugin:
        assert plugin.work(1) == 2
        threading.Thread(target=lambda: plugin.add(0, 0)).start()  # the solo path ends
        assert plugin.work(2) == 3
        with pytest.raises(wasmforge.PluginCallError):
            plugin.work(7)
        assert plugin.work(3) == 4
    assert seen == [101, 102, 107, 103]


@pytest.mark.parametrize("solo_call", ["work", "work_pair"])
def test_threads_never_share_the_store_after_one_thread_called_alone(solo_call: str) -> None:
    """The solo path (no lock for the only thread calling) hands over to the lock without two calls
    ever running in the one store: each call parks in a host function that releases the GIL, and the
    other threads start while the first thread is inside a solo call (of the lean native path, or of
    the other lean path: ``work_pair`` has two results)."""
    active: list[int] = []
    overlaps: list[int] = []
    guard = threading.Lock()
    errors: list[BaseException] = []
    workers: list[threading.Thread] = []
    plugin: wasmforge.Plugin

    def caller(base: int) -> None:
        try:
            for index in range(100):
                assert plugin.work(base + index) == base + index + 1
                assert plugin.add(base, index) == base + index
                assert plugin.work_pair(index) == [index, index + 1]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def probe(value: int) -> None:
        with guard:
            active.append(value)
            if len(active) > 1:
                overlaps.append(value)
        if value == -1:  # inside the first thread's solo call: the others start calling now
            workers.extend(threading.Thread(target=caller, args=(base,)) for base in (1000, 2000))
            for worker in workers:
                worker.start()
            time.sleep(0.1)  # the GIL is free: their calls would run in this store now, were they let in
        time.sleep(0.0005)
        with guard:
            active.remove(value)

    with _probe_plugin(probe) as plugin:
        assert plugin.add(1, 1) == 2  # the main thread calls first, alone: the solo path
        assert plugin.work_pair(2) == [2, 3]
        assert getattr(plugin, solo_call)(-1) in (0, [-1, 0])
        for index in range(100):  # and goes on calling, now through the lock
            assert plugin.work(index) == index + 1
        deadline = time.monotonic() + PATIENCE
        for worker in workers:
            worker.join(timeout=max(0.1, deadline - time.monotonic()))
        assert not any(worker.is_alive() for worker in workers)
        assert errors == []
        assert overlaps == []


def test_close_from_another_thread_waits_for_the_solo_call() -> None:
    """close() on another thread while the solo thread is inside a call: the call finishes first."""
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def probe(value: int) -> None:
        entered.set()
        release.wait(PATIENCE)
        order.append("call returns")

    plugin = _probe_plugin(probe)
    solo = threading.Thread(target=lambda: (plugin.work(1), finished.set()))
    solo.start()
    assert entered.wait(PATIENCE)
    closer = threading.Thread(target=lambda: (plugin.close(), order.append("closed")))
    closer.start()
    time.sleep(0.05)  # give close() the chance to run early, which it must not take
    release.set()
    solo.join(PATIENCE)
    closer.join(PATIENCE)
    assert finished.is_set()
    assert order == ["call returns", "closed"]
    with pytest.raises(wasmforge.UsageError, match="closed"):
        plugin.add(1, 2)


def test_ctrl_c_inside_a_solo_call_leaves_nothing_for_other_threads_to_wait_for() -> None:
    """A KeyboardInterrupt out of a solo call (here from its host function) takes its announcement
    with it: another thread's first call then runs, instead of waiting for a call that is over."""
    def probe(value: int) -> None:
        if value == 13:
            raise KeyboardInterrupt

    with _probe_plugin(probe) as plugin:
        assert plugin.work(1) == 2
        with pytest.raises(KeyboardInterrupt):
            plugin.work(13)
        results: list[int] = []
        other = threading.Thread(target=lambda: results.append(plugin.work(2)))
        other.start()
        other.join(PATIENCE)
        assert results == [3]
        assert plugin.work(4) == 5


# ---- cancellable plugins: the deadline is set when the epoch moved, not per call -------------------


def test_a_cancellable_plugin_sets_its_deadline_only_when_the_epoch_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    settings: list[int] = []
    original = wasmtime.Store.set_epoch_deadline

    def counting(store: wasmtime.Store, ticks: int) -> None:
        settings.append(ticks)
        original(store, ticks)

    with _probe_plugin(lambda value: None, cancellable=True) as plugin:
        monkeypatch.setattr(wasmtime.Store, "set_epoch_deadline", counting)
        for index in range(50):
            assert plugin.add(index, 1) == index + 1
        assert len(settings) == 1  # the first call; the deadline still holds for the other 49
        plugin.cancel()  # while nothing runs: the epoch moved past that deadline
        assert [plugin.add(2, 2) for _ in range(5)] == [4] * 5  # re-armed once, not cancelled
        assert len(settings) == 2


def test_a_cancellable_plugin_is_still_cancelled_after_many_calls() -> None:
    with _probe_plugin(lambda value: None, cancellable=True) as plugin:
        for _ in range(3):
            for index in range(20):
                assert plugin.add(index, 1) == index + 1
            outcome: list[Any] = []
            worker = threading.Thread(target=lambda: outcome.append(_outcome(plugin.spin)))
            worker.start()
            deadline = time.monotonic() + PATIENCE
            while worker.is_alive() and time.monotonic() < deadline:
                plugin.cancel()
                worker.join(timeout=0.05)
            assert not worker.is_alive()
            assert outcome[0][0] == "PluginCancelled", outcome


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_another_thread_is_in_a_solo_call_leaves_the_child_free_to_call() -> None:
    """The parent thread inside a solo call does not exist in the child: the child's calls must not wait for it."""
    inside, leave = threading.Event(), threading.Event()

    def probe(value: int) -> None:
        if value == 99:
            inside.set()
            leave.wait(PATIENCE)

    with _probe_plugin(probe) as plugin:
        caller = threading.Thread(target=lambda: plugin.work(99))
        caller.start()  # this thread calls first: the solo path is its
        assert inside.wait(PATIENCE)
        pid = os.fork()
        if pid == 0:  # the child: call, and report through the exit status
            try:
                code = 0 if plugin.add(2, 3) == 5 and plugin.work(1) == 2 else 1
            except BaseException:  # noqa: BLE001 - the exit status says it
                code = 2
            os._exit(code)
        deadline = time.monotonic() + PATIENCE
        status = None
        while status is None and time.monotonic() < deadline:
            done, waited = os.waitpid(pid, os.WNOHANG)
            if done:
                status = waited
            else:
                time.sleep(0.05)
        if status is None:  # still waiting: the child hangs
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        leave.set()
        caller.join(PATIENCE)
        assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_a_thread_taking_over_does_not_wait_on_the_former_solo_threads_later_calls() -> None:
    """Once the solo path ends, only the solo calls already running are waited for: the former solo
    thread calling on and on (now through the lock, each call parked in its host function) must not
    keep another thread out until it stops."""
    last_call = 3000

    def probe(value: int) -> None:
        time.sleep(0.0005)  # inside the call, holding the lock, the GIL free

    with _probe_plugin(probe) as plugin:
        started, stop = threading.Event(), threading.Event()
        calls = [0]
        other_done_after: list[int] = []

        def former_solo() -> None:
            while not stop.is_set() and calls[0] < last_call:
                assert plugin.work(calls[0]) == calls[0] + 1
                calls[0] += 1
                if calls[0] == 10:
                    started.set()  # it alone has called: the solo path is its

        def take_over() -> None:
            assert plugin.add(2, 3) == 5  # ends the solo path while the worker keeps calling
            other_done_after.append(calls[0])
            stop.set()

        worker = threading.Thread(target=former_solo)
        worker.start()
        assert started.wait(PATIENCE)
        other = threading.Thread(target=take_over)
        other.start()
        other.join(PATIENCE)
        worker.join(PATIENCE)
        assert not other.is_alive() and not worker.is_alive()
        assert other_done_after and other_done_after[0] < last_call, "it waited until the former solo thread stopped"
