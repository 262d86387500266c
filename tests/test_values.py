"""Values are what they claim, and only WasmforgeError escapes, for every input.

Numbers that do not fit their type are refused both ways (arguments before
the call, results after it), limits that wasmtime would wrap are refused,
and JSON nested deeper than anything real (metadata, results, panic reports,
arguments, wasmforge.toml) is one clear error, not a RecursionError.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import wasmtime
from hypothesis import example, given, settings
from hypothesis import strategies as st

import wasmforge
from wasmforge import (
    ArgumentError,
    HostFunctionError,
    HostFunctionResultError,
    PluginLoadError,
    PluginPanic,
    PluginProtocolError,
    UsageError,
)
from wasmforge._json import MAX_DEPTH, too_deep
from helpers import assert_one_line_error, run_cli

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(autouse=True)
def bystander() -> "object":
    """Another plugin in the same process: it must keep answering whatever the hostile one does."""
    wat = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="bystander.wasm") as plugin:
        yield plugin
        assert plugin.add(1, 2) == 3


def export(name: str, params: list, returns: str, result_wasm: str = "") -> dict:
    return {"v": 1, "kind": "export", "name": name, "abi": "native", "input": "json", "output": "json",
            "params": params, "returns": returns, "fallible": False,
            **({"result_wasm": result_wasm} if result_wasm else {})}


def number(name: str, rust: str, wasm: str) -> dict:
    return {"name": name, "type": rust, "wire": "number", "wasm": wasm}


def custom_section(records: list) -> str:
    return f'(@custom "wasmforge.exports" {json.dumps("".join(json.dumps(r) + chr(10) for r in records))})'


RECORDS = [
    export("echo_u64", [number("x", "u64", "i64")], "u64", "i64"),
    export("echo_i64", [number("x", "i64", "i64")], "i64", "i64"),
    export("as_i8", [], "i8", "i32"),
    export("as_u8", [], "u8", "i32"),
    export("as_bool", [], "bool", "i32"),
    export("as_u32", [], "u32", "i32"),
    export("half_f32", [number("x", "f32", "f32")], "f32", "f32"),
    {"v": 1, "kind": "import", "name": "take_u8", "abi": "native", "input": "json", "output": "json",
     "params": [number("x", "u8", "i32")], "returns": "()", "fallible": False},
    {"v": 1, "kind": "import", "name": "greet", "abi": "buffer", "input": "none", "output": "str",
     "params": [], "returns": "String", "fallible": False},
    {"v": 1, "kind": "import", "name": "blob", "abi": "buffer", "input": "json", "output": "unit",
     "params": [number("n", "u32", "i32"), {"name": "b", "type": "Vec<u8>", "wire": "bytes"}],
     "returns": "()", "fallible": False},
]

NUMBERS_WAT = f"""(module
  (import "wasmforge:host" "take_u8" (func $take_u8 (param i32)))
  (import "wasmforge:host" "greet" (func $greet (param i32 i32 i32)))
  (import "wasmforge:host" "blob" (func $blob (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (data (i32.const 128) "[1,[\\"a\\"]]")
  (func (export "__wf_alloc") (param i32) (result i32) global.get $next)
  (func (export "allocate_at") (param i32) local.get 0 global.set $next)
  (func (export "echo_u64") (param i64) (result i64) local.get 0)
  (func (export "echo_i64") (param i64) (result i64) local.get 0)
  (func (export "as_i8") (result i32) i32.const 1000)
  (func (export "as_u8") (result i32) i32.const 300)
  (func (export "as_bool") (result i32) i32.const 2)
  (func (export "as_u32") (result i32) i32.const -1)
  (func (export "half_f32") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul)
  (func (export "pass_300") (call $take_u8 (i32.const 300)))
  (func (export "call_greet") (result i32) (call $greet (i32.const 0) (i32.const 0) (i32.const 64)) (i32.load (i32.const 64)))
  (func (export "call_blob") (call $blob (i32.const 128) (i32.const 9) (i32.const 64)))
  {custom_section(RECORDS)})"""


@pytest.fixture(params=["lean", "guarded"])
def numbers(request: pytest.FixtureRequest) -> wasmforge.Plugin:
    """The same plugin on both call paths: the lean one (no limits) and the general one (a timeout)."""
    limits = wasmforge.Limits(timeout=30) if request.param == "guarded" else None
    plugin = wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(NUMBERS_WAT)), name="numbers.wasm", limits=limits,
                                         host_functions={"take_u8": lambda x: None, "greet": lambda: "hello",
                                                         "blob": lambda n, b: None})
    with plugin:
        yield plugin


# ---- results that do not fit their declared type --------------------------------------------


@pytest.mark.parametrize("function, shown", [("as_i8", "1000, which is not a valid i8"),
                                             ("as_u8", "300, which is not a valid u8"),
                                             ("as_bool", "2, which is not a valid bool")])
def test_a_result_its_type_cannot_hold_is_a_protocol_error(numbers: wasmforge.Plugin, function: str, shown: str) -> None:
    with pytest.raises(PluginProtocolError, match=rf"^{function}\(\) in numbers.wasm returned {shown}$"):
        numbers.call(function)


def test_results_that_fit_come_back_as_their_type(numbers: wasmforge.Plugin) -> None:
    assert numbers.as_u32() == 2**32 - 1
    assert numbers.echo_u64(2**63) == 2**63 and numbers.echo_u64(2**64 - 1) == 2**64 - 1
    assert numbers.echo_i64(-(2**63)) == -(2**63)
    assert numbers.half_f32(float("inf")) == float("inf") and numbers.half_f32(3.0) == 1.5


def test_arguments_are_refused_rather_than_wrapped(numbers: wasmforge.Plugin) -> None:
    with pytest.raises(ArgumentError, match=r"argument 1 of echo_i64 \(x: i64\): 9223372036854775808 is out of range"):
        numbers.echo_i64(2**63)
    with pytest.raises(ArgumentError, match=r"argument 1 of echo_u64 \(x: u64\): -1 is out of range \(0 to 18446744073709551615\)"):
        numbers.echo_u64(-1)
    with pytest.raises(ArgumentError, match=r"argument 1 of half_f32 \(x: f32\): 1e\+300 is too large for f32"):
        numbers.half_f32(1e300)
    with pytest.raises(ArgumentError, match=r"argument 1 of half_f32 \(x: f32\): an integer of 1329 bits is too large for f32"):
        numbers.half_f32(10**400)  # float() of it overflows: still an ArgumentError


def test_a_plugin_passing_a_host_function_a_value_its_type_cannot_hold(numbers: wasmforge.Plugin) -> None:
    with pytest.raises(PluginProtocolError, match=r"pass_300\(\) in numbers.wasm failed: numbers.wasm passed 300 as x: u8 to host function take_u8, which a u8 cannot hold"):
        numbers.call_raw("pass_300")
    with pytest.raises(HostFunctionError, match=r"received arguments that do not fit blob\(n: u32, b: Vec<u8>\) -> \(\): b is not a list of bytes"):
        numbers.call_raw("call_blob")
    assert numbers.as_u32() == 2**32 - 1  # and the next call works


def test_a_host_function_result_written_only_inside_memory_as_an_unsigned_address(numbers: wasmforge.Plugin) -> None:
    """An allocator answering 2**31 + 16 (a negative i32) once made Python write at a negative index."""
    assert numbers.call_raw("call_greet") == 4096
    numbers.call_raw("allocate_at", -(2**31) + 16)
    with pytest.raises(PluginProtocolError, match=r"host function greet cannot return its result: 5 bytes at 2147483664 run past the end of memory \(65536 bytes\)"):
        numbers.call_raw("call_greet")
    assert numbers.call_raw("call_greet") == 4096  # a fresh instance


@pytest.mark.parametrize("returned, shown", [("text", "'text'"), (2**40, "int 1099511627776"), (1.5, "float 1.5")])
def test_a_raw_host_function_result_that_is_not_its_wasm_type(returned: object, shown: str) -> None:
    wat = """(module (import "env" "get" (func $get (result i32)))
      (func (export "run") (result i32) call $get))"""
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="raw.wasm",
                                     host_functions={"get": lambda: returned}) as plugin:
        with pytest.raises(HostFunctionResultError, match=rf"^run\(\) in raw.wasm failed: host function get returned {shown}, but it returns i32"):
            plugin.run()
        error = pytest.raises(PluginProtocolError, plugin.run).value
        assert isinstance(error, HostFunctionError)  # both: a host function failed, and broke the contract


def test_a_host_function_returning_lone_surrogates_for_a_string(numbers: wasmforge.Plugin) -> None:
    numbers_options = {"take_u8": lambda x: None, "greet": lambda: "\ud800", "blob": lambda n, b: None}
    with wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(NUMBERS_WAT)), name="numbers.wasm",
                                     host_functions=numbers_options) as plugin:
        with pytest.raises(HostFunctionResultError, match="not valid Unicode"):
            plugin.call_raw("call_greet")


# ---- metadata that lies or overflows -----------------------------------------------------------


@pytest.mark.parametrize("version, shown", [("1e999", "float inf"), ("true", "bool True"), ("0", "int 0"),
                                            ('"1"', "'1'")])
def test_metadata_versions_that_are_not_version_numbers(version: str, shown: str) -> None:
    line = json.dumps(RECORDS[2]).replace('"v": 1', f'"v": {version}')
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(line + chr(10))}))'
    with pytest.raises(PluginLoadError, match=rf"has malformed wasmforge metadata \(v {shown} is not a version number\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="odd.wasm")


def test_deeply_nested_metadata_is_malformed_not_a_recursion_error() -> None:
    line = json.dumps(RECORDS[2]).replace('"params": []', f'"params": {DEEP}')
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(line + chr(10))}))'
    with pytest.raises(PluginLoadError, match=f"malformed wasmforge metadata \\(JSON nested more than {MAX_DEPTH} levels deep\\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="deep.wasm")


@pytest.mark.parametrize("record, problem", [
    ({"params": [number("x", "u64", "i32")]}, "number parameter x: u64 travels as wasm type 'i32'"),
    ({"returns": "u8", "result_wasm": "i64"}, "a native result u8 that travels as ('i64',)"),
    ({"returns": "usize", "result_wasm": "i32"}, "a native result usize that travels as ('i32',)"),
])
def test_metadata_whose_types_disagree_with_their_wasm_types(record: dict, problem: str) -> None:
    line = json.dumps({**RECORDS[2], **record})
    wat = f'(module (@custom "wasmforge.exports" {json.dumps(line + chr(10))}))'
    with pytest.raises(PluginLoadError, match=f"malformed wasmforge metadata \\({problem.replace('(', '.').replace(')', '.')}\\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="odd.wasm")


def test_import_metadata_that_lies_about_the_wasm_type_is_refused() -> None:
    """Described as take_u8(x: u8) but imported as (i64, i64) -> (): once a TypeError at the first call."""
    wat = f"""(module (import "wasmforge:host" "take_u8" (func (param i64 i64)))
      {custom_section([RECORDS[7]])})"""
    with pytest.raises(PluginLoadError, match=r"host function take_u8 is described as take_u8\(x: u8\) -> \(\) \(native call, wasm type \(i32\) -> \(\)\) but liar.wasm imports it as \(i64, i64\) -> \(\)"):
        wasmforge.Plugin.from_bytes(bytes(wasmtime.wat2wasm(wat)), name="liar.wasm",
                                    host_functions={"take_u8": lambda x: None})


# ---- JSON nested deeper than anything real ---------------------------------------------------------

JSON_RECORDS = [
    {"v": 1, "kind": "export", "name": "deep_result", "abi": "buffer", "input": "none", "output": "json",
     "params": [], "returns": "Vec<u32>", "fallible": False},
    {"v": 1, "kind": "export", "name": "echo", "abi": "buffer", "input": "json", "output": "json",
     "params": [{"name": "v", "type": "Value", "wire": "json"}], "returns": "Value", "fallible": False},
    {"v": 1, "kind": "export", "name": "deep_panic", "abi": "native", "input": "json", "output": "json",
     "params": [], "returns": "()", "fallible": False},
]
JSON_WAT = f"""(module
  (import "wasmforge" "panic" (func $panic (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{DEEP}")
  (func (export "__wf_alloc") (param i32) (result i32) i32.const 20000)
  (func (export "deep_result") (param i32 i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 1024))
    (i32.store (i32.const 24) (i32.const {len(DEEP)})) (i32.const 16))
  (func (export "echo") (param i32 i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (local.get 0))
    (i32.store (i32.const 24) (local.get 1)) (i32.const 16))
  (func (export "deep_panic") (call $panic (i32.const 1024) (i32.const {len(DEEP)})) unreachable)
  {custom_section(JSON_RECORDS)})"""


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    path = tmp_path / "nested.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(JSON_WAT)))
    return path


def test_a_deeply_nested_result_is_a_protocol_error(nested: Path) -> None:
    with wasmforge.load(nested) as plugin:
        with pytest.raises(PluginProtocolError, match=rf"deep_result\(\) in nested.wasm returned invalid JSON \(JSON nested more than {MAX_DEPTH} levels deep\) for Vec<u32>"):
            plugin.deep_result()
        shallow = [[[1]], {"a": [2]}]
        assert plugin.echo(shallow) == [shallow]  # echo hands back its input: the list of arguments
        just_fits = json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
        assert plugin.echo(just_fits) == [just_fits]


def test_a_deeply_nested_argument_is_an_argument_error(nested: Path) -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with wasmforge.load(nested) as plugin:
        with pytest.raises(ArgumentError, match="arguments of echo cannot be sent as JSON: nested too deeply"):
            plugin.echo(deep)


def test_the_depth_bound_does_not_follow_the_recursion_limit(nested: Path) -> None:
    """A program (or a library it imports) that raises the recursion limit gets the same refusal."""
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50000)
    try:
        with wasmforge.load(nested) as plugin:
            with pytest.raises(ArgumentError, match="arguments of echo cannot be sent as JSON: nested too deeply"):
                plugin.echo(deep)
            shallow: list = []
            for _ in range(MAX_DEPTH + 1):
                shallow = [shallow]
            with pytest.raises(ArgumentError, match="nested too deeply"):
                plugin.echo(shallow)  # within any recursion limit, past the bound
    finally:
        sys.setrecursionlimit(limit)


def test_a_deeply_nested_panic_report_still_makes_a_panic(nested: Path) -> None:
    with wasmforge.load(nested) as plugin:
        with pytest.raises(PluginPanic, match=r"deep_panic\(\) in nested.wasm panicked: \(the plugin's panic report could not be read\)"):
            plugin.deep_panic()


def test_the_cli_refuses_deep_arguments_results_and_wasmforge_toml_in_one_line(nested: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("call", "--plugin", str(nested), "echo", DEEP), 2,
                          f"argument 1 is JSON nested more than {MAX_DEPTH} levels deep")
    assert_one_line_error(run_cli("call", "--plugin", str(nested), "deep_result"), 1,
                          "deep_result() in nested.wasm returned invalid JSON")
    assert_one_line_error(run_cli("chain", "echo", "--input", DEEP, "--dir", str(nested.parent)),
                          2, "the input is not JSON (JSON nested more than")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "wasmforge.toml").write_text("[limits]\nfuel = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line_error(run_cli("-C", str(workspace), "call", "--plugin", str(nested), "deep_result"), 2,
                          "wasmforge.toml is not valid TOML: arrays or tables nested too deeply")


# ---- limits that wasmtime would wrap, and other options ------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"fuel": 2**64 + 5_000_000}, "fuel must be a whole number from 1 to 2\\*\\*64 - 1, got 18446744073714551616"),
    ({"fuel": True}, "fuel must be a whole number from 1 to 2\\*\\*64 - 1, got True"),
    ({"fuel": 2.5}, "fuel must be a whole number"),
    ({"memory_limit": 2**64 + 128 * 1024}, "memory must be at most 2\\*\\*63 - 1 bytes \\(8 EiB\\), got 18446744073709682688"),
    ({"memory_limit": "9" * 400}, "memory_limit '9999.* is not a size"),
    ({"memory_limit": True}, "memory_limit True is not a size"),
    ({"cancellable": "yes"}, "cancellable must be True or False, got 'yes'"),
    # Equal to load()'s defaults but not what they are: load() shares the defaults' Limits only for the real thing.
    ({"cancellable": 0}, "cancellable must be True or False, got 0"),
    ({"interruptible": 1}, "interruptible must be True or False, got 1"),
    ({"memory_limit": float(1 << 30)}, "memory_limit 1073741824.0 is not a size"),
    ({"max_output": float(16 << 20)}, "max_output 16777216.0 is not a size"),
    ({"max_module_size": float(64 << 20)}, "max_module_size 67108864.0 is not a size"),
])
def test_limits_that_would_wrap_or_are_not_what_they_claim_are_refused(nested: Path, options: dict, message: str) -> None:
    with pytest.raises(wasmforge.OptionError, match=message):
        wasmforge.load(nested, **options)


def test_the_largest_fuel_budget_is_accepted(nested: Path) -> None:
    with wasmforge.load(nested, fuel=2**64 - 1) as plugin:
        assert plugin.echo([1]) == [[1]]


def test_cli_limits_that_would_wrap_are_usage_errors(nested: Path) -> None:
    assert_one_line_error(run_cli("call", "--plugin", str(nested), "--fuel", str(2**64), "echo", "1"), 2,
                          "fuel must be a whole number from 1 to 2**64 - 1")
    assert_one_line_error(run_cli("call", "--plugin", str(nested), "--memory-limit", str(2**64), "echo", "1"), 2,
                          "memory must be at most 2**63 - 1 bytes")


@pytest.mark.parametrize("host_functions, message", [
    ("print", "host_functions must be a mapping of import names to callables"),
    ({"f": 3}, "host function 'f' is int 3, not a callable"),
    ({1: print}, "host_functions keys are import names"),
])
def test_host_functions_that_are_not_functions(nested: Path, host_functions: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        wasmforge.load(nested, host_functions=host_functions)


def test_an_absurd_number_of_instances_is_refused_at_once(nested: Path) -> None:
    with pytest.raises(UsageError, match=r"instances must be a whole number of 1 or more \(at most 1024\), got 100000000000000000000"):
        wasmforge.load(nested, instances=10**20)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\k'), children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(0, 12), indent=st.sampled_from([None, 1]))
@example(value="[", limit=0, indent=None)  # brackets only inside a string: once read as one level too deep
def test_the_depth_check_agrees_with_the_parsed_value(value: object, limit: int, indent: object) -> None:
    """Strings full of brackets, quotes and backslashes do not fool it, in either direction."""
    text = json.dumps(value, indent=indent)  # type: ignore[arg-type]
    assert too_deep(text, limit) == (_depth(value) > limit)
    assert too_deep(text.encode(), limit) == (_depth(value) > limit)


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 300])
@pytest.mark.parametrize("noise", ["]]}", "[[{", '\\"]', ""])
def test_the_depth_check_at_the_limit_with_brackets_in_strings(depth: int, noise: str) -> None:
    value: object = 1
    for level in range(depth):
        value = [noise, value] if level % 2 else {noise: value}
    assert too_deep(json.dumps(value)) == (depth > MAX_DEPTH)
