"""A hand-written WAT plugin that breaks the wire contract in every way a
buffer result can: each is a clear PluginProtocolError and the host stays intact."""

from __future__ import annotations

import json
import re

import pytest
import wasmtime

import wasmforge
from wasmforge import PluginLoadError, PluginProtocolError


def record(name: str, output: str, returns: str, version: int = 1) -> str:
    return json.dumps({
        "v": version, "kind": "export", "name": name, "abi": "buffer", "input": "str", "output": output,
        "params": [{"name": "s", "type": "&str", "wire": "str"}], "returns": returns, "fallible": False,
    })


def returning(name: str, status: int, ptr: int, length: int) -> str:
    """An export that writes the descriptor [status, ptr, len] at 16 and returns its address."""
    return f"""
  (func (export "{name}") (param i32 i32) (result i32)
    (i32.store (i32.const 16) (i32.const {status}))
    (i32.store (i32.const 20) (i32.const {ptr}))
    (i32.store (i32.const 24) (i32.const {length}))
    (i32.const 16))"""


RECORDS = "\n".join([
    record("bad_pointer", "str", "String"),
    record("huge_length", "bytes", "Vec<u8>"),
    record("bad_utf8", "str", "String"),
    record("bad_json", "json", "Vec<u32>"),
    record("bad_descriptor", "str", "String"),
    record("bad_status", "str", "String"),
    record("fine", "str", "String"),
]) + "\n"

WAT = f"""
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "__wf_alloc") (param $n i32) (result i32)
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get $n))))
  (data (i32.const 100) "\\ff\\fe\\fd")
  (data (i32.const 200) "[1, 2,")
  (data (i32.const 300) "fine")
  {returning("bad_pointer", 0, 65530, 100)}
  {returning("huge_length", 0, 0, -1)}
  {returning("bad_utf8", 0, 100, 3)}
  {returning("bad_json", 0, 200, 6)}
  {returning("bad_status", 7, 300, 4)}
  {returning("fine", 0, 300, 4)}
  (func (export "bad_descriptor") (param i32 i32) (result i32) (i32.const 65534))
  (@custom "wasmforge.exports" {json.dumps(RECORDS)})
)
"""


@pytest.fixture(scope="module")
def broken() -> wasmforge.Plugin:
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(WAT)), name="broken.wasm") as plugin:
        yield plugin


@pytest.mark.parametrize(
    "function, message",
    [
        ("bad_pointer", r"^bad_pointer\(\) in broken.wasm returned a result outside its memory: read of 100 bytes at 65530 is outside broken.wasm's memory \(65536 bytes\)$"),
        ("huge_length", r"returned a result outside its memory: read of 4294967295 bytes at 0"),
        ("bad_utf8", r"^bad_utf8\(\) in broken.wasm returned invalid UTF-8 \(invalid start byte at byte 0\) for String$"),
        ("bad_json", r"^bad_json\(\) in broken.wasm returned invalid JSON \(.*\) for Vec<u32>$"),
        ("bad_descriptor", r"returned a result descriptor outside its memory: read of 12 bytes at 65534"),
        ("bad_status", r"^bad_status\(\) in broken.wasm returned unknown status 7$"),
    ],
)
def test_each_broken_result_is_a_clear_protocol_error(broken, function: str, message: str) -> None:
    with pytest.raises(PluginProtocolError, match=message) as caught:
        broken.call(function, "input")
    assert (caught.value.plugin, caught.value.function) == ("broken.wasm", function)
    assert broken.fine("still") == "fine"  # the host is intact


def test_metadata_from_a_newer_wasmforge_is_refused() -> None:
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(record("f", "str", "String", version=4))}))'
    with pytest.raises(PluginLoadError, match="uses wire contract v4; this wasmforge understands up to v3: upgrade wasmforge"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="new.wasm")


def test_malformed_metadata_is_refused() -> None:
    wat = '(module (@custom "wasmforge.exports" "{not json}\\n"))'
    with pytest.raises(PluginLoadError, match="new.wasm has malformed wasmforge metadata"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="new.wasm")


def test_unknown_imports_are_named_at_load() -> None:
    wat = '(module (import "env" "mystery" (func (param i32) (result i64))))'
    with pytest.raises(PluginLoadError, match=r"imports env.mystery\(i32\) -> \(i64\), which wasmforge does not provide; supply it as host_functions=\{'env.mystery': callable\}"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="odd.wasm")


def test_plain_imports_can_be_supplied_raw() -> None:
    """The blog series' print_str(ptr, len): a plain wasm import, called with raw numbers."""
    wat = """(module
      (import "env" "print_str" (func $print (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 8) "hello")
      (func (export "run") (call $print (i32.const 8) (i32.const 5))))"""
    seen = []
    holder = {}

    def print_str(ptr, length):
        seen.append(holder["plugin"].memory.read(ptr, length))

    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="series.wasm",
                                     host_functions={"print_str": print_str}) as plugin:
        holder["plugin"] = plugin
        plugin.run()
    assert seen == [b"hello"]


def test_metadata_that_does_not_match_the_code_is_refused() -> None:
    """A module whose metadata lies about an export's wasm type is refused at load, not called wrongly."""
    lying = json.dumps({"v": 1, "kind": "export", "name": "add", "abi": "native", "input": "json", "output": "json",
                        "params": [{"name": "a", "type": "i32", "wire": "number", "wasm": "i32"}],
                        "returns": "i32", "fallible": False, "result_wasm": "i32"})
    wat = f"""(module (func (export "add") (param i32 i32) (result i32) local.get 0)
      (@custom "wasmforge.exports" {json.dumps(lying + chr(10))}))"""
    with pytest.raises(PluginLoadError, match=r"export add is described as add\(a: i32\) -> i32 \(native call, wasm type \(i32\) -> \(i32\)\) but its wasm type is \(i32, i32\) -> \(i32\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="liar.wasm")


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"abi": "oative"}, "abi 'oative' is not one of native, buffer"),
        ({"output": "xml"}, "output 'xml' is not one of unit, str, bytes, json"),
        ({"params": [{"name": "s", "type": "&str", "wire": "yaml"}]}, "parameter s has wire 'yaml'"),
    ],
)
def test_metadata_fields_the_host_does_not_know_are_refused(change: dict, problem: str) -> None:
    """Found by the fuzzer: a flipped bit in "native" must not send a call down the wrong path."""
    fields = {**json.loads(record("f", "str", "String")), **change}
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(json.dumps(fields) + chr(10))}))'
    with pytest.raises(PluginLoadError, match=re.escape(problem)):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="odd.wasm")
