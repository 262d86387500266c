"""The Python API on a real plugin built from the template, and on plain wasm."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

import wasmforge
from wasmforge import (
    ArgumentError,
    MemoryAccessError,
    PluginLoadError,
    UnknownFunctionError,
    UsageError,
    WasmforgeError,
)


@pytest.mark.cargo
def test_seed_functions(demo_plugin) -> None:
    assert demo_plugin.add(1, 2) == 3
    assert demo_plugin.call("add", -5, 2) == -3
    assert demo_plugin.length("supercalifragilisticexpialidocious") == 34
    assert demo_plugin.greet("wasm") == "Hello, wasm!"
    assert demo_plugin.length("") == 0
    assert demo_plugin.length("héllo") == 6


@pytest.mark.cargo
def test_exports_are_typed_signatures(demo_plugin) -> None:
    exports = demo_plugin.exports
    assert set(exports) == {"add", "length", "greet", "stats", "parse_port", "preprocess"}
    assert str(exports["add"]) == "add(one: i32, two: i32) -> i32"
    assert str(exports["length"]) == "length(s: &str) -> u32"
    assert exports["add"].abi == "native" and exports["length"].abi == "buffer"


@pytest.mark.cargo
def test_call_raw_calls_numeric_exports_directly(demo_plugin) -> None:
    assert demo_plugin.call_raw("add", 40, 2) == 42


@pytest.mark.cargo
def test_memory_read_write_and_bounds(demo_plugin) -> None:
    memory = demo_plugin.memory
    assert memory.size % 65536 == 0 and memory.size > 0
    memory.write(memory.size - 4, b"wxyz")
    assert memory.read(memory.size - 4, 4) == b"wxyz"
    with pytest.raises(MemoryAccessError, match="outside"):
        memory.read(memory.size - 2, 4)
    with pytest.raises(MemoryAccessError, match="outside"):
        memory.write(memory.size, b"x")
    with pytest.raises(MemoryAccessError):
        memory.read(-1, 1)
    assert isinstance(MemoryAccessError("x"), IndexError)


@pytest.mark.cargo
def test_argument_checks_before_entering_wasm(demo_plugin) -> None:
    with pytest.raises(ArgumentError, match=r"^add\(\) takes 2 arguments \(one: i32, two: i32\), got 1$"):
        demo_plugin.add(1)
    with pytest.raises(ArgumentError, match=r"^length\(\) takes 1 argument \(s: &str\), got 2$"):
        demo_plugin.length("a", "b")
    with pytest.raises(ArgumentError, match=r"argument 2 of add \(two: i32\): expected an integer, got 'x'"):
        demo_plugin.add(1, "x")
    with pytest.raises(ArgumentError, match=r"argument 1 of add \(one: i32\): 2147483648 is out of range"):
        demo_plugin.add(2**31, 0)
    with pytest.raises(ArgumentError, match=r"argument 1 of length \(s: &str\): expected str, got int 5"):
        demo_plugin.length(5)
    assert isinstance(ArgumentError("x"), TypeError)
    assert demo_plugin.add(1, 2) == 3  # still fine


@pytest.mark.cargo
def test_unknown_function(demo_plugin) -> None:
    with pytest.raises(UnknownFunctionError, match="has no function 'nope'; its functions: add, greet, length, parse_port, preprocess, stats"):
        demo_plugin.nope
    with pytest.raises(AttributeError):
        demo_plugin.call("nope")
    assert not hasattr(demo_plugin, "nope")


@pytest.mark.cargo
def test_close_and_context_manager(demo) -> None:
    with wasmforge.load(demo.wasm) as plugin:
        assert plugin.add(2, 2) == 4
    with pytest.raises(UsageError, match="is closed"):
        plugin.add(1, 2)
    plugin.close()  # twice is fine


def test_every_error_is_a_wasmforge_error() -> None:
    for name in wasmforge.__all__:
        value = getattr(wasmforge, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, WasmforgeError), name


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"hello, not wasm", "is not a WebAssembly module"),
        (b"(module)", r"WebAssembly text \(WAT\)"),
        (b"\0asm\x01\0\0\0\x01\x05", "is truncated"),
        (b"\0asm\x01\0", "is truncated"),
    ],
)
def test_files_that_are_not_plugins(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    with pytest.raises(PluginLoadError, match=message):
        wasmforge.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="no plugin at .*missing.wasm"):
        wasmforge.load(tmp_path / "missing.wasm")


NUMERIC_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "add64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
  (func (export "half") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul)
  (func (export "scale") (param f64 f64) (result f64) local.get 0 local.get 1 f64.mul)
  (func (export "nothing"))
  (memory (export "memory") 1))
"""


def test_plain_wasm_without_metadata_works_through_numeric_exports(tmp_path: Path) -> None:
    path = tmp_path / "plain.wasm"
    path.write_bytes(wasmtime.wat2wasm(NUMERIC_WAT))
    with wasmforge.load(path) as plugin:
        assert str(plugin.exports["add"]) == "add(p0: i32, p1: i32) -> i32"
        assert plugin.exports["add"].abi == "raw"
        assert plugin.add(1, 2) == 3
        assert plugin.add64(2**40, 1) == 2**40 + 1
        assert plugin.half(3.0) == 1.5
        assert plugin.scale(1.5, 4) == 6.0
        assert plugin.nothing() is None
        assert plugin.call_raw("add", 5, 6) == 11
        with pytest.raises(ArgumentError, match="expected an integer"):
            plugin.add(1.5, 2)
