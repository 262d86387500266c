"""Fuzzing the host: mutated plugin modules, and a guest that feeds random
values back through every channel the wire contract has. Only WasmforgeError
subclasses may come out: no crash, no hang, no other exception.

CI runs a bounded number of examples; for a longer run:
    WASMFORGE_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import os

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wasmforge
from wasmforge.cli import parse_cli_argument

EXAMPLES = int(os.environ.get("WASMFORGE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
LIMITS = wasmforge.Limits(timeout=0.5, memory=64 << 20)


def record(name: str, abi: str, input_: str, output: str, params: list, returns: str) -> dict:
    return {"v": 1, "kind": "export", "name": name, "abi": abi, "input": input_, "output": output,
            "params": params, "returns": returns, "fallible": False,
            **({"result_wasm": "i32"} if abi == "native" and returns != "()" else {})}


RECORDS = [
    record("chaos_text", "buffer", "str", "str", [{"name": "s", "type": "&str", "wire": "str"}], "String"),
    record("chaos_json", "buffer", "json", "json", [{"name": "n", "type": "u32", "wire": "number", "wasm": "i32"},
                                                     {"name": "v", "type": "Vec<u8>", "wire": "bytes"}], "Vec<u32>"),
    record("chaos_bytes", "buffer", "bytes", "bytes", [{"name": "b", "type": "Vec<u8>", "wire": "bytes"}], "Vec<u8>"),
    record("chaos_u32", "native", "json", "json", [{"name": "x", "type": "u32", "wire": "number", "wasm": "i32"}], "u32"),
    record("chaos_bool", "native", "json", "json", [], "bool"),
    record("chaos_panic", "native", "none", "unit", [], "()"),
    record("chaos_oom", "native", "none", "unit", [], "()"),
]

# Every value the guest hands back comes from env.next(), which the test controls.
CHAOS_WAT = f"""
(module
  (import "env" "next" (func $next (result i32)))
  (import "wasmforge" "panic" (func $panic (param i32 i32)))
  (import "wasmforge" "out_of_memory" (func $oom (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "__wf_alloc") (param $n i32) (result i32)
    (if (result i32) (call $next)
      (then (global.get $heap) (global.set $heap (i32.add (global.get $heap) (local.get $n))))
      (else (call $next))))
  (func $answer (result i32)
    (i32.store (i32.const 16) (call $next))
    (i32.store (i32.const 20) (call $next))
    (i32.store (i32.const 24) (call $next))
    (call $next))
  (func (export "chaos_text") (param i32 i32) (result i32) (call $answer))
  (func (export "chaos_json") (param i32 i32) (result i32) (call $answer))
  (func (export "chaos_bytes") (param i32 i32) (result i32) (call $answer))
  (func (export "chaos_u32") (param i32) (result i32) (call $next))
  (func (export "chaos_bool") (result i32) (call $next))
  (func (export "chaos_panic") (call $panic (call $next) (call $next)) unreachable)
  (func (export "chaos_oom") (call $oom (call $next)) unreachable)
  (data (i32.const 1024) "{{\\"message\\":\\"boom\\",\\"file\\":\\"x.rs\\",\\"line\\":1}}")
  (data (i32.const 2048) "\\ff\\fe[1,2]\\"a\\"")
  (@custom "wasmforge.exports" {json.dumps("".join(json.dumps(r) + chr(10) for r in RECORDS))})
)
"""
CHAOS = bytes(wasmtime.wat2wasm(CHAOS_WAT))

# Values near the edges of memory and of the integer types, plus the interesting addresses above.
INTERESTING = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 16, 20, 1024, 1040, 2048, 2050, 2054, 4096, 65532, 65535, 65536, -1, -16,
                     0x7FFFFFFF, -0x80000000]),
    st.integers(-(2**31), 2**31 - 1),
)


def call_everything(plugin: wasmforge.Plugin) -> None:
    """Calls each export with arguments that fit its signature; only WasmforgeError may escape."""
    samples = {"str": "chaos", "bytes": b"\x00\x01", "number": 7, "json": [1]}
    for name, signature in plugin.exports.items():
        args = [samples.get(p.wire, 1) if p.type != "bool" else True for p in signature.params]
        if signature.abi == "raw":
            args = [parse_cli_argument(signature, i, "1") for i in range(len(signature.params))]
            args = [a if not isinstance(a, str) else 1 for a in args]
            args = [1.0 if p.type in ("f32", "f64") else a for p, a in zip(signature.params, args)]
        try:
            plugin.call(name, *args)
        except wasmforge.WasmforgeError:
            pass


@FUZZ
@given(values=st.lists(INTERESTING, min_size=1, max_size=40))
def test_random_values_from_the_guest_only_raise_wasmforge_errors(values: list) -> None:
    feed = iter(values * 50)
    plugin = wasmforge.Plugin.from_bytes(CHAOS, name="chaos.wasm", limits=LIMITS,
                                         host_functions={"next": lambda: next(feed, 0)})
    with plugin:
        call_everything(plugin)


def mutate(data: bytes, edits: list) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in edits:
        if not buffer:
            break
        index = position % len(buffer)
        if kind == "flip":
            buffer[index] ^= 1 << (value % 8)
        elif kind == "set":
            buffer[index] = value % 256
        elif kind == "insert":
            buffer[index:index] = bytes([value % 256])
        elif kind == "delete":
            del buffer[index]
        elif kind == "truncate":
            del buffer[index:]
    return bytes(buffer)


EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                           st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=6)


def load_and_call(data: bytes) -> None:
    try:
        plugin = wasmforge.Plugin.from_bytes(data, name="mutant.wasm", limits=LIMITS,
                                             host_functions={"next": lambda: 1})
    except wasmforge.WasmforgeError:
        return
    with plugin:
        call_everything(plugin)


@FUZZ
@given(edits=EDITS)
def test_mutated_small_modules(edits: list) -> None:
    load_and_call(mutate(CHAOS, edits))


@settings(max_examples=max(10, EXAMPLES // 10), deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS)
def test_mutated_rust_plugin(demo, edits: list) -> None:
    """The real plugin from the template, mutated (bounded: each compile takes a while)."""
    load_and_call(mutate(demo.wasm.read_bytes(), edits))


def test_the_chaos_plugin_is_meaningful() -> None:
    """A guard against a fuzz target that fails before reaching the code under test."""
    answers = iter([1, 0, 1024, 10, 16])  # alloc ok, then status 0, ptr 1024, len 10, descriptor at 16
    with wasmforge.Plugin.from_bytes(CHAOS, name="chaos.wasm", host_functions={"next": lambda: next(answers)}) as plugin:
        assert plugin.chaos_text("x") == '{"message"'
