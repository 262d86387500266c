"""The setup exports a load calls (a WASI reactor's _initialize, the pdk's __wf_init) go through
runtime/imports.py's call_setup, not wasmtime-py's Func.__call__: the same outcomes either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

import wasmforge
from wasmforge import PluginLoadError, PluginPanic
from wasmforge.runtime import imports

# _initialize traps, or calls a host function, or counts; __wf_init sets a flag the export reads back.
_WAT = r'''
(module
  (import "wasmforge:host" "hook" (func $hook))
  (import "wasmforge" "panic" (func $panic (param i32 i32)))
  (memory (export "memory") 1)
  (global $mode (mut i32) (i32.const MODE))
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 16) "{\"message\":\"init failed\",\"file\":\"src/lib.rs\",\"line\":7}")
  (func (export "_initialize")
    (if (i32.eq (global.get $mode) (i32.const 1)) (then unreachable))
    (if (i32.eq (global.get $mode) (i32.const 2)) (then (call $hook)))
    (if (i32.eq (global.get $mode) (i32.const 3)) (then (call $panic (i32.const 16) (i32.const 54)) unreachable)))
  (func (export "__wf_init") (global.set $ready (i32.add (global.get $ready) (i32.const 1))))
  (func (export "ready") (result i32) (global.get $ready))
  (func (export "boom") (call $panic (i32.const 16) (i32.const 54)) unreachable))
'''


def _module(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / f"setup{mode}.wasm"
    path.write_bytes(wasmtime.wat2wasm(_WAT.replace("MODE", str(mode))))
    return path


class Boom(Exception):
    pass


def _hook() -> None:
    raise Boom("the host function failed")


@pytest.fixture(params=[True, False], ids=["call_setup", "Func.__call__"])
def raw(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(imports, "_RAW_SETUP_CALL", request.param)
    return bool(request.param)


def test_setup_exports_run_once_each_at_load_and_after_a_trap(tmp_path: Path, raw: bool) -> None:
    with wasmforge.load(_module(tmp_path, 0), host_functions={"hook": _hook}) as plugin:
        assert plugin.call_raw("ready") == 1
        assert plugin.call_raw("ready") == 1
    with wasmforge.load(_module(tmp_path, 0), host_functions={"hook": _hook}, instances=2) as pool:
        assert pool.call_raw("ready") == 1


def test_a_trap_in_a_setup_export_fails_the_load(tmp_path: Path, raw: bool) -> None:
    with pytest.raises(PluginLoadError, match=r"setup1.wasm failed in _initialize while starting: .*unreachable"):
        wasmforge.load(_module(tmp_path, 1), host_functions={"hook": _hook})


def test_a_host_functions_exception_in_a_setup_export_reaches_the_loader(tmp_path: Path, raw: bool) -> None:
    with pytest.raises(Exception) as failure:
        wasmforge.load(_module(tmp_path, 2), host_functions={"hook": _hook})
    assert "the host function failed" in str(failure.value) or isinstance(failure.value.__cause__, Boom)
    # Nothing of it is left behind for the next call into wasm, in this plugin or another.
    with wasmforge.load(_module(tmp_path, 0), host_functions={"hook": _hook}) as plugin:
        assert plugin.call_raw("ready") == 1


def test_a_panic_in_a_setup_export_fails_the_load_and_the_first_calls_panic_is_reported(tmp_path: Path, raw: bool) -> None:
    with pytest.raises(PluginLoadError, match=r"setup3.wasm failed in _initialize while starting"):
        wasmforge.load(_module(tmp_path, 3), host_functions={"hook": _hook})
    with wasmforge.load(_module(tmp_path, 0), host_functions={"hook": _hook}) as plugin:
        with pytest.raises(PluginPanic, match="init failed") as panic:
            plugin.call_raw("boom")
        assert (panic.value.file, panic.value.line) == ("src/lib.rs", 7)


def test_both_ways_fail_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = []
    for flag in (True, False):
        monkeypatch.setattr(imports, "_RAW_SETUP_CALL", flag)
        seen = []
        for mode in (1, 2, 3):
            try:
                wasmforge.load(_module(tmp_path, mode), host_functions={"hook": _hook}).close()
                seen.append(("loaded", ""))
            except Exception as error:  # noqa: BLE001 - comparing whatever each way raises
                seen.append((type(error).__name__, str(error).splitlines()[0]))
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
