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
