"""Fuzzing the host: mutated plugin modules, and a guest that feeds random
values back through every channel the wire contract has. Only WasmforgeError
subclasses may come out: no crash, no hang, no other exception.

CI runs a bounded number of examples; for a longer run:
    WASMFORGE_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wasmforge
from wasmforge.abi.arguments import parse_cli_argument

REPO = Path(__file__).resolve().parents[1]

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


@pytest.mark.cargo
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


# ---- JSON from outside: nesting depth and numbers past every range ----------------------------------

#: Numbers no Python int or float conversion should meet unguarded: overflow to infinity, 5000 digits, NaN.
HUGE = st.sampled_from(["1e999", "-1e999", "9" * 5000, "1" + "0" * 400, "NaN", "Infinity", "-0", "1.5",
                        str(2**64), str(-(2**63) - 1), "true", "null", '"x"'])


@st.composite
def nested_json(draw: st.DrawFn) -> str:
    """JSON text nested anywhere from flat to far past any recursion limit, around a huge number."""
    depth = draw(st.one_of(st.integers(0, 8), st.integers(250, 262), st.integers(900, 1100), st.integers(3000, 20000)))
    pattern = draw(st.lists(st.sampled_from(["[", '{"k":', '["]]}",']), min_size=1, max_size=4))  # the last hides ]s in a string
    opening = (pattern * (depth // len(pattern) + 1))[:depth]
    closing = "".join("}" if o.startswith("{") else "]" for o in reversed(opening))
    if draw(st.booleans()):
        closing = closing[: draw(st.integers(0, len(closing)))]  # unbalanced too
    return "".join(opening) + draw(HUGE) + closing


JSON_PLUGIN_RECORDS = [
    record("give_json", "buffer", "none", "json", [], "Vec<u32>"),
    record("take_json", "native", "none", "unit", [], "()"),
]


def json_plugin(text: str, metadata_extra: str = "") -> bytes:
    """A plugin that returns ``text`` as a JSON result, reports it as a panic, and whose metadata may carry it."""
    data = text.encode()
    lines = "".join(json.dumps(r) + "\n" for r in JSON_PLUGIN_RECORDS) + metadata_extra
    wat = f"""(module
      (import "wasmforge" "panic" (func $panic (param i32 i32)))
      (memory (export "memory") {1 + len(data) // 65536 + 1})
      (data (i32.const 65536) {json.dumps(text)})
      (func (export "__wf_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "give_json") (param i32 i32) (result i32)
        (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 65536))
        (i32.store (i32.const 24) (i32.const {len(data)})) (i32.const 16))
      (func (export "take_json") (call $panic (i32.const 65536) (i32.const {len(data)})) unreachable)
      (@custom "wasmforge.exports" {json.dumps(lines)}))"""
    return bytes(wasmtime.wat2wasm(wat))


@FUZZ
@given(text=nested_json(), where=st.sampled_from(["result", "panic", "metadata-v", "metadata-params", "cli"]))
def test_nested_json_and_huge_numbers_only_raise_wasmforge_errors(text: str, where: str) -> None:
    if where == "cli":
        signature = wasmforge.Signature("f", (wasmforge.Param("v", "Value"),), "()", "buffer", "json")
        try:
            parse_cli_argument(signature, 0, text)
        except wasmforge.WasmforgeError:
            pass
        return
    extra = ""
    if where.startswith("metadata"):
        field = "v" if where == "metadata-v" else "params"
        extra = json.dumps({**record("m", "buffer", "none", "unit", [], "()"), field: 0}).replace(
            f'"{field}": 0', f'"{field}": {text}') + "\n"
    try:
        plugin = wasmforge.Plugin.from_bytes(json_plugin(text, extra), name="json.wasm", limits=LIMITS)
    except wasmforge.WasmforgeError:
        return
    with plugin:
        call_everything(plugin)


# ---- foreign module shapes: SIMD and GC types, several memories, duplicate and imported things ---------

VALUE_TYPES = ["i32", "i64", "f32", "f64", "v128", "funcref", "externref", "anyref", "i31ref", "exnref"]
_DEFAULTS = {"i32": "i32.const 0", "i64": "i64.const 0", "f32": "f32.const 0", "f64": "f64.const 0",
             "v128": "v128.const i64x2 0 0", "funcref": "ref.null func", "externref": "ref.null extern",
             "anyref": "ref.null any", "i31ref": "ref.null i31", "exnref": "ref.null exn"}
_ZEROS = {"i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0}


def _signature(params: list, results: list) -> str:
    return (f"(param {' '.join(params)})" if params else "") + (f" (result {' '.join(results)})" if results else "")


@st.composite
def foreign_module(draw: st.DrawFn) -> tuple[str, list]:
    """A WAT module of shapes foreign toolchains make, and the function imports it has (to stub)."""
    types = st.lists(st.sampled_from(VALUE_TYPES), max_size=3)
    memory_names = draw(st.lists(st.sampled_from(["memory", "O", "mem", "a", "scratch"]), max_size=3, unique=True))
    imported_memory = draw(st.booleans())
    imports = draw(st.lists(st.tuples(st.sampled_from(["env", "gojs", "a"]), st.sampled_from(["f", "g", "runtime.ticks"]),
                                      types, types), max_size=4))
    others = draw(st.lists(st.sampled_from(['(import "env" "t" (table 1 funcref))', '(import "env" "sp" (global (mut i32)))',
                                            '(import "env" "any" (table 1 anyref))']), max_size=2, unique=True))
    exports = draw(st.lists(st.tuples(types, types), max_size=4))
    lines = ["(module"]
    for module, name, params, results in imports:
        lines.append(f'  (import "{module}" "{name}" (func {_signature(params, results)}))')
    if imported_memory:
        lines.append(f'  (import "env" "memory" (memory {draw(st.integers(0, 2))}))')
    lines += [f"  {other}" for other in others]
    for name in memory_names:
        lines.append(f'  (memory (export "{name}") {draw(st.integers(0, 2))})')
    if not memory_names and not imported_memory and draw(st.booleans()):
        lines.append("  (memory 1)")  # a memory nobody exports
    for index, (params, results) in enumerate(exports):
        body = " ".join(_DEFAULTS[t] for t in results)
        lines.append(f'  (func (export "{draw(st.sampled_from(["f", "_f", "memory"]))}{index}") {_signature(params, results)} {body})')
    calls = []
    for index, (_, _, params, results) in enumerate(imports):
        calls.append(f"(call {index} {' '.join(f'({_DEFAULTS[t]})' for t in params)})" + " drop" * len(results))
    lines.append(f'  (func (export "call_imports") {" ".join(calls)})')
    return "\n".join(lines) + ")", imports


def foreign_shapes_property(examples: int, last_case: Path) -> None:
    """Loads, inspects, calls and reads generated foreign modules; only WasmforgeError may come out.

    Run in a child process (see the test below): the failure these shapes used to cause was an abort,
    and ``last_case`` keeps the module being tried, so an abort still says which.
    """
    from wasmforge.runtime.inspection import inspect_plugin

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)
    @given(case=foreign_module(), supply=st.booleans())
    def foreign_shapes(case: tuple[str, list], supply: bool) -> None:
        wat, imports = case
        last_case.write_text(wat)
        try:
            data = bytes(wasmtime.wat2wasm(wat))
        except wasmtime.WasmtimeError:
            return  # a shape wat2wasm rejects (a duplicate export name): not a module
        path = last_case.with_suffix(".wasm")
        path.write_bytes(data)
        try:
            inspect_plugin(path)
        except wasmforge.WasmforgeError:
            pass

        def stub(results: list) -> object:
            def host(caller: wasmforge.Caller, *args: object) -> object:
                try:
                    caller.memory.read(0, min(8, caller.memory.size))
                except wasmforge.WasmforgeError:
                    pass
                values = [_ZEROS.get(t, 0) for t in results]
                return None if not values else values[0] if len(values) == 1 else values
            return host

        host = {f"{m}.{n}": stub(results) for m, n, _, results in imports} if supply else None
        try:
            plugin = wasmforge.Plugin.from_bytes(data, name="foreign.wasm", limits=LIMITS, host_functions=host)
        except wasmforge.WasmforgeError:
            return
        with plugin:
            call_everything(plugin)
            for name in plugin.exports:
                try:
                    plugin.call_raw(name, *[_ZEROS.get(p.type, 0) for p in plugin.exports[name].params])
                except wasmforge.WasmforgeError:
                    pass
            for memory in [plugin.memory, *plugin.memories.values()]:
                try:
                    memory.read(0, min(16, memory.size))
                except wasmforge.WasmforgeError:
                    pass

    foreign_shapes()


def test_foreign_module_shapes_only_raise_wasmforge_errors(tmp_path: Path) -> None:
    last_case = tmp_path / "case.wat"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import test_fuzz; "
            "test_fuzz.foreign_shapes_property(int(sys.argv[2]), Path(sys.argv[3]))")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(EXAMPLES), str(last_case)],
                            capture_output=True, text=True, env=env, timeout=1800)
    shown = last_case.read_text() if last_case.exists() else "(none)"
    assert result.returncode == 0, f"exit {result.returncode}; last module tried:\n{shown}\n{result.stderr[-4000:]}"
