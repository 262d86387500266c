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


def call_everything(plugin: wasmforge.Plugin) -> int:
    """Calls each export with arguments that fit its signature; only WasmforgeError may escape.

    Returns how many calls returned a value (rather than raising).
    """
    samples = {"str": "chaos", "bytes": b"\x00\x01", "number": 7, "json": [1]}
    returned = 0
    for name, signature in plugin.exports.items():
        args = [samples.get(p.wire, 1) if p.type != "bool" else True for p in signature.params]
        if signature.abi == "raw":
            args = [parse_cli_argument(signature, i, "1") for i in range(len(signature.params))]
            args = [a if not isinstance(a, str) else 1 for a in args]
            args = [1.0 if p.type in ("f32", "f64") else a for p, a in zip(signature.params, args)]
        try:
            plugin.call(name, *args)
            returned += 1
        except wasmforge.WasmforgeError:
            pass
    return returned


@FUZZ
@given(values=st.lists(INTERESTING, min_size=1, max_size=40))
def test_random_values_from_the_guest_only_raise_wasmforge_errors(values: list) -> None:
    feed = iter(values * 50)
    plugin = wasmforge.Plugin.from_bytes(CHAOS, name="chaos.wasm", limits=LIMITS,
                                         host_functions={"next": lambda: next(feed, 0)})
    with plugin:
        call_everything(plugin)


def code_section(data: bytes) -> tuple[int, int]:
    """Where the code section's bytes are: edits aimed there reach the compiler and the
    calls, where edits anywhere mostly break the header or the metadata and stop at the loader."""
    offset = 8
    while offset < len(data):
        section_id, size, shift, offset = data[offset], 0, 0, offset + 1
        while True:
            byte = data[offset]
            size, shift, offset = size | (byte & 0x7F) << shift, shift + 7, offset + 1
            if byte < 0x80:
                break
        if section_id == 10:
            return offset, offset + size
        offset += size
    raise AssertionError("no code section")


def mutate(data: bytes, edits: list) -> bytes:
    buffer = bytearray(data)
    code_start, code_end = code_section(data)
    for kind, in_code, position, value in edits:
        if not buffer:
            break
        # Hypothesis favours small numbers; scrambled, they land anywhere, not at the start.
        position = (position + 0x5BD1E995) * 0x9E3779B1 % 2**32
        if in_code and code_end <= len(buffer):
            index = code_start + position % (code_end - code_start)
        else:
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


ANYWHERE = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), st.booleans(),
                              st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=6)
# One bit flipped in the code: most such modules still fail validation, but about one
# in four loads and runs different code (more edits, or whole bytes, break nearly all).
IN_CODE = st.tuples(st.just("flip"), st.just(True), st.integers(0, 2**31), st.integers(0, 7)).map(lambda edit: [edit])
EDITS = st.one_of(IN_CODE, ANYWHERE)


class Tally:
    """What a fuzz run reached: a run whose mutants never load tests only the loader's refusals."""

    def __init__(self) -> None:
        self.cases = self.loaded = self.returned = 0

    def load_and_call(self, data: bytes) -> None:
        self.cases += 1
        try:
            plugin = wasmforge.Plugin.from_bytes(data, name="mutant.wasm", limits=LIMITS,
                                                 host_functions={"next": lambda: 1})
        except wasmforge.WasmforgeError:
            return
        self.loaded += 1
        with plugin:
            self.returned += call_everything(plugin)

    def assert_reached_calls(self) -> None:
        assert self.cases >= 10
        assert self.loaded > 0, f"none of {self.cases} mutants loaded"
        assert self.returned > 0, f"no call into the {self.loaded} mutants that loaded returned"


def test_mutated_small_modules() -> None:
    tally = Tally()

    @FUZZ
    @given(edits=EDITS)
    def mutants_of_the_chaos_module(edits: list) -> None:
        tally.load_and_call(mutate(CHAOS, edits))

    mutants_of_the_chaos_module()
    tally.assert_reached_calls()


def test_mutated_rust_plugin(demo) -> None:
    """The real plugin from the template, mutated (bounded: each compile takes a while)."""
    tally, original = Tally(), demo.wasm.read_bytes()

    # Mostly code flips: compiling each mutant of a real plugin takes a while, so few are wasted on the loader.
    @settings(max_examples=max(60, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
    @given(edits=st.one_of(IN_CODE, IN_CODE, IN_CODE, ANYWHERE))
    def mutants_of_the_template_plugin(edits: list) -> None:
        tally.load_and_call(mutate(original, edits))

    mutants_of_the_template_plugin()
    tally.assert_reached_calls()


def test_the_chaos_plugin_is_meaningful() -> None:
    """A guard against a fuzz target that fails before reaching the code under test."""
    answers = iter([1, 0, 1024, 10, 16])  # alloc ok, then status 0, ptr 1024, len 10, descriptor at 16
    with wasmforge.Plugin.from_bytes(CHAOS, name="chaos.wasm", host_functions={"next": lambda: next(answers)}) as plugin:
        assert plugin.chaos_text("x") == '{"message"'
