"""instances=N: N threads run wasm at once, each on its own instance."""

from __future__ import annotations

import threading

import pytest
import wasmtime

import wasmforge
from wasmforge import HostFunctionError, PluginTrap, UsageError

# meet() waits in the host until two calls are inside wasm at the same time.
MEETING = wasmtime.wat2wasm("""
(module
  (import "env" "meet" (func $meet))
  (memory (export "memory") 1)
  (func (export "meet") (result i32) (call $meet) (i32.const 1))
  (func (export "trap") unreachable)
  (func (export "answer") (result i32) (i32.const 42)))
""")


def load(instances: int, barrier: threading.Barrier, patience: float = 30) -> wasmforge.Plugin:
    """Each call to meet() waits inside wasm until a second call is inside wasm too (or ``patience`` runs out)."""
    return wasmforge.Plugin.from_bytes(bytes(MEETING), name="meeting.wasm", instances=instances,
                                       host_functions={"meet": lambda: barrier.wait(timeout=patience)})


def run_two(plugin: wasmforge.Plugin) -> list:
    outcomes: list = []

    def worker() -> None:
        try:
            outcomes.append(plugin.meet())
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcomes.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_two_instances_run_two_calls_at_once() -> None:
    with load(2, threading.Barrier(2)) as plugin:
        assert run_two(plugin) == [1, 1]


def test_one_instance_runs_one_call_at_a_time() -> None:
    with load(1, threading.Barrier(2), patience=2) as plugin:  # the wait is meant to run out here
        outcomes = run_two(plugin)
    # The first call waited for a second that could not enter: the barrier broke.
    assert len(outcomes) == 2 and all(isinstance(o, HostFunctionError) for o in outcomes)


def test_a_trap_replaces_only_that_instance() -> None:
    with load(2, threading.Barrier(2)) as plugin:
        for _ in range(5):
            with pytest.raises(PluginTrap):
                plugin.trap()
            assert plugin.answer() == 42
        assert run_two(plugin) == [1, 1]


def test_memory_is_per_instance() -> None:
    with load(2, threading.Barrier(2)) as plugin:
        with pytest.raises(UsageError, match="has 2 instances, each with its own memory"):
            plugin.memory.read(0, 1)


@pytest.mark.parametrize("instances", [0, -1, 1.5, True])
def test_instances_must_be_a_positive_whole_number(instances) -> None:
    with pytest.raises(UsageError, match="instances must be a whole number of 1 or more"):
        wasmforge.Plugin.from_bytes(bytes(MEETING), name="meeting.wasm", instances=instances,
                                    host_functions={"meet": lambda: None})


@pytest.mark.cargo
def test_a_pool_of_real_rust_plugins(demo) -> None:
    results: list = []
    with wasmforge.load(demo.wasm, instances=3) as plugin:
        def worker(offset: int) -> None:
            results.extend(plugin.add(offset, i) == offset + i for i in range(300))
            results.append(plugin.greet(str(offset)) == f"Hello, {offset}!")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(results) == 4 * 301 and all(results)


def test_close_wakes_the_calls_waiting_for_an_instance_and_frees_busy_ones_when_they_return() -> None:
    import gc
    import sys
    import time

    from wasmforge.runtime.instance import LiveInstance

    inside, leave = threading.Barrier(3), threading.Event()

    def meet() -> None:  # both instances stay busy until the test lets them go
        inside.wait(timeout=60)
        leave.wait(timeout=60)

    plugin = wasmforge.Plugin.from_bytes(bytes(MEETING), name="closing.wasm", instances=2,
                                         host_functions={"meet": meet})
    outcomes: dict[str, object] = {}

    def call(label: str) -> None:
        try:
            outcomes[label] = plugin.meet()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcomes[label] = error

    busy = [threading.Thread(target=call, args=(f"busy{n}",)) for n in range(2)]
    for thread in busy:
        thread.start()
    inside.wait(timeout=60)  # both instances are inside wasm
    waiter = threading.Thread(target=call, args=("waiter",))
    waiter.start()
    deadline = time.monotonic() + 60
    # The third call is blocked waiting for an instance (in InstancePool.acquire).
    while sys._current_frames().get(waiter.ident or 0) is None or \
            sys._current_frames()[waiter.ident or 0].f_code.co_name != "acquire":
        assert time.monotonic() < deadline and waiter.is_alive(), outcomes
        time.sleep(0.01)
    plugin.close()
    waiter.join(timeout=60)
    assert not waiter.is_alive(), "close() left a call waiting for an instance forever"
    assert isinstance(outcomes["waiter"], UsageError)
    assert str(outcomes["waiter"]) == "plugin closing.wasm was closed while this call waited for an instance"
    leave.set()
    for thread in busy:
        thread.join(timeout=60)
    assert (outcomes["busy0"], outcomes["busy1"]) == (1, 1)  # calls already running finish normally
    gc.collect()
    left = [o for o in gc.get_objects() if isinstance(o, LiveInstance) and o.plugin_name == "closing.wasm"]
    assert left == []  # the busy instances were dropped when their calls returned
    with pytest.raises(UsageError, match="plugin closing.wasm is closed"):
        plugin.answer()
