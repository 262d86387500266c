"""Plugins beyond one process: pickling by content, process pools with every start method, fork safety."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import select
import shutil
import threading
import uuid
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from wasmforge import PluginIntegrityError, PluginTimeout

START_METHODS = [m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]

# wait() blocks in the host until the test says so; spin() never returns; seven() is 7.
BLOCKING = """(module
  (import "env" "wait" (func $wait))
  (func (export "block") (call $wait))
  (func (export "spin") (loop $l (br $l)))
  (func (export "seven") (result i32) (i32.const 7)))"""


def scale(value: int) -> int:
    """A module-level host function: it pickles by reference."""
    return value * 10


SCALED = wasmtime.wat2wasm("""(module
  (import "env" "scale" (func $scale (param i32) (result i32)))
  (func (export "scaled") (param i32) (result i32) (call $scale (local.get 0))))""")


# ---- pickling by content ----

@pytest.mark.cargo
def test_a_pickled_plugin_is_its_module_and_options(demo) -> None:
    with wasmforge.load(demo.wasm, timeout=5, instances=2) as plugin:
        data = pickle.dumps(plugin)
        module = demo.wasm.read_bytes()
        assert module in data and len(data) - len(module) < 1000  # the module plus a few hundred bytes
        copy = pickle.loads(data)
        assert copy is not plugin and copy.name == plugin.name
        assert copy.limits == plugin.limits and copy.instances == 2
        assert copy.add(40, 2) == plugin.add(40, 2)
        assert copy.greet("you") == plugin.greet("you")


@pytest.mark.cargo
def test_a_bound_function_pickles_with_its_plugin(demo) -> None:
    with wasmforge.load(demo.wasm) as plugin:
        first = pickle.loads(pickle.dumps(plugin.add))   # the first access, through __getattr__
        again = pickle.loads(pickle.dumps(plugin.add))   # later ones, a plain attribute
        assert first(2, 3) == plugin.add(2, 3) and again(2, 3) == plugin.add(2, 3)
        assert plugin.add.__name__ == "add" and str(plugin.add.signature) == str(plugin.exports["add"])
        copy, add = pickle.loads(pickle.dumps((plugin, plugin.add)))
        assert copy.add is add  # one plugin for both


@pytest.mark.cargo
def test_unpickling_again_in_a_process_gives_the_plugin_it_made(demo) -> None:
    with wasmforge.load(demo.wasm) as plugin:
        data = pickle.dumps(plugin)
        expected = plugin.add(2, 3)
    first = pickle.loads(data)
    assert pickle.loads(data) is first  # loaded once per process, not per task
    first.close()
    second = pickle.loads(data)
    assert second is not first and not second.closed and second.add(2, 3) == expected  # a fresh, open one
    second.close()


@pytest.mark.cargo
def test_unpickling_checks_the_hash(demo) -> None:
    with wasmforge.load(demo.wasm) as plugin:
        data = pickle.dumps(plugin)
    module = demo.wasm.read_bytes()
    tampered = bytearray(module)
    tampered[-1] ^= 0xFF
    with pytest.raises(PluginIntegrityError, match=r"demo_plugin\.wasm does not match its pinned sha256"):
        pickle.loads(data.replace(module, bytes(tampered)))


@pytest.mark.cargo
def test_a_chain_pickles_step_by_step(demo, tmp_path: Path) -> None:
    shutil.copy(demo.wasm, tmp_path / "10-a.wasm")
    shutil.copy(demo.wasm, tmp_path / "20-b.wasm")
    with wasmforge.load_dir(tmp_path) as chain:
        copy = pickle.loads(pickle.dumps(chain))
        assert [p.name for p in copy] == ["10-a.wasm", "20-b.wasm"]
        text = "# Hi\n"
        assert copy.call("preprocess", text) == chain.call("preprocess", text)


def test_a_hot_plugin_pickles_as_a_snapshot_of_its_serving_version(tmp_path: Path) -> None:
    path = tmp_path / "scaled.wasm"
    path.write_bytes(SCALED)
    with wasmforge.HotPlugin.from_file(path, host_functions={"scale": scale}) as hot:
        snapshot = pickle.loads(pickle.dumps(hot))
        assert isinstance(snapshot, wasmforge.Plugin) and snapshot.scaled(4) == 40
        scaled = pickle.loads(pickle.dumps(hot.scaled))
        assert scaled(5) == 50 and scaled.__name__ == "scaled"


def test_host_functions_travel_when_they_pickle() -> None:
    with wasmforge.Plugin.from_bytes(SCALED, name="scaled.wasm", host_functions={"scale": scale}) as plugin:
        assert pickle.loads(pickle.dumps(plugin.scaled))(3) == 30


def test_host_functions_that_do_not_pickle_are_named() -> None:
    with wasmforge.Plugin.from_bytes(SCALED, name="scaled.wasm", host_functions={"scale": lambda v: v}) as plugin:
        with pytest.raises(pickle.PicklingError, match=r"cannot pickle plugin scaled\.wasm: host function 'scale' "
                                                       r"cannot be pickled; define host functions at module level"):
            pickle.dumps(plugin)
        with pytest.raises(pickle.PicklingError, match="host function 'scale'"):
            pickle.dumps(plugin.scaled)


# ---- process pools ----

@pytest.mark.cargo
@pytest.mark.parametrize("method", START_METHODS)
def test_a_process_pool_maps_a_plugin_function_like_one_process(demo, method: str) -> None:
    ones, twos = list(range(-20, 20)), [i * 7 for i in range(40)]
    with wasmforge.load(demo.wasm) as plugin:
        expected = [plugin.add(a, b) for a, b in zip(ones, twos)]
        greetings = [plugin.greet(str(n)) for n in ones]
        context = multiprocessing.get_context(method)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            assert list(pool.map(plugin.add, ones, twos, timeout=300)) == expected
            assert list(pool.map(plugin.greet, map(str, ones), chunksize=8, timeout=300)) == greetings


def _load_and_call_unseen_module(constant: int) -> int:
    module = wasmtime.wat2wasm(f'(module (func (export "f") (result i32) (i32.const {constant})))')
    with wasmforge.Plugin.from_bytes(module, name="unseen.wasm") as plugin:
        return int(plugin.call_raw("f"))


def test_a_forked_worker_compiles_modules_it_has_never_seen() -> None:
    # The parent compiled already (wasmtime's compiler threads started); a forked child that compiles
    # in parallel waits for threads it does not have. Bytes never seen before: no cache can answer.
    with wasmforge.Plugin.from_bytes(wasmtime.wat2wasm(BLOCKING), name="parent.wasm",
                                     host_functions={"wait": lambda: None}) as plugin:
        assert plugin.call_raw("seven") == 7
    constant = uuid.uuid4().int % 100_000
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_load_and_call_unseen_module, constant).result(timeout=300) == constant


def _in_a_fork(child) -> str:
    """Runs ``child()`` in a forked process; what it returned (as text), or why not, within a generous timeout."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, str(child()).encode())
        except BaseException as error:  # noqa: BLE001
            os.write(write_end, f"{type(error).__name__}: {error}".encode())
        os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 120)
        if not ready:
            os.kill(pid, 9)
            return "the child hung"
        return os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def test_a_forked_child_does_not_inherit_a_store_in_use() -> None:
    entered, leave = threading.Event(), threading.Event()

    def wait() -> None:
        entered.set()
        leave.wait(60)

    with wasmforge.Plugin.from_bytes(wasmtime.wat2wasm(BLOCKING), name="busy.wasm",
                                     host_functions={"wait": wait}) as plugin:
        caller = threading.Thread(target=plugin.call_raw, args=("block",))
        caller.start()
        try:
            assert entered.wait(60)
            # Another thread is inside this plugin's only store: the child starts on a fresh instance.
            assert _in_a_fork(lambda: plugin.call_raw("seven")) == "7"
        finally:
            leave.set()
            caller.join()


def test_time_limits_work_in_a_forked_child() -> None:
    # A timed call in the parent started the epoch ticker; the child has no such thread until it starts one.
    with wasmforge.Plugin.from_bytes(wasmtime.wat2wasm(BLOCKING), name="spin.wasm", host_functions={"wait": lambda: None},
                                     limits=wasmforge.Limits(timeout=0.2)) as plugin:
        with pytest.raises(PluginTimeout):
            plugin.call_raw("spin")

        def child() -> str:
            try:
                plugin.call_raw("spin")
            except PluginTimeout:
                return "timed out"
            return "returned"

        assert _in_a_fork(child) == "timed out"
