"""Modules nobody here wrote: SIMD and GC types, memories under other names or
imported, several memories, duplicate imports, host functions that need the
calling instance's memory, and a real Emscripten build (sql.js).

Whatever such a module holds, it costs the host one WasmforgeError at most:
the cases that used to abort Python run in a subprocess, where an abort kills
only the child and shows up as its exit status.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from wasmforge import ArgumentError, Caller, MemoryAccessError, PluginLoadError, UsageError
from helpers import REPO, assert_one_line_error, run_cli

SIMD_WAT = """(module
  (memory (export "memory") 1)
  (func (export "splat") (param i32) (result v128) local.get 0 i32x4.splat)
  (func (export "lanes") (param v128) (result i32) local.get 0 i32x4.extract_lane 2)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"""
SIMD_IMPORT_WAT = """(module
  (import "env" "mix" (func (param v128) (result v128)))
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"""
GC_WAT = """(module
  (type $point (struct (field i32)))
  (func (export "any") (param anyref) (result i32) i32.const 1)
  (func (export "exn") (param exnref))
  (func (export "point") (param (ref null $point)) (result i32) i32.const 2)
  (func (export "fref") (result funcref) ref.null func)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"""


def wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


BYSTANDER_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


@pytest.fixture(autouse=True)
def bystander() -> "object":
    """Another plugin in the same process: it must keep answering whatever the foreign one does."""
    with wasmforge.Plugin.from_bytes(wasm(BYSTANDER_WAT), name="bystander.wasm") as plugin:
        yield plugin
        assert plugin.add(1, 2) == 3


def run_python(code: str, *args: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    """``code`` in a fresh interpreter (with a bystander plugin that must still answer at the end):
    an abort there is a signal exit status, not a dead test run."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    bystander = (f"import wasmforge as _wf, wasmtime as _wt\n"
                 f"_bystander = _wf.Plugin.from_bytes(_wt.wat2wasm({BYSTANDER_WAT!r}), name='bystander.wasm')\n")
    check = "\nassert _bystander.add(1, 2) == 3, 'the bystander stopped answering'\n"
    return subprocess.run([sys.executable, "-c", bystander + textwrap.dedent(code) + check, *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def survived(result: "subprocess.CompletedProcess[str]") -> str:
    assert result.returncode == 0, f"exit {result.returncode} (negative: killed by a signal)\n{result.stderr}"
    return result.stdout


# ---- types wasmtime-py cannot name ----------------------------------------------------------


@pytest.mark.parametrize("source", [SIMD_WAT, GC_WAT], ids=["simd", "gc"])
def test_load_from_bytes_and_calls_survive_types_python_cannot_hold(tmp_path: Path, source: str) -> None:
    path = tmp_path / "foreign.wasm"
    path.write_bytes(wasm(source))
    out = survived(run_python("""
        import sys, wasmforge
        for plugin in (wasmforge.load(sys.argv[1]), wasmforge.Plugin.from_bytes(open(sys.argv[1], "rb").read())):
            print(sorted(str(s) for s in plugin.exports.values()))
            for name in plugin.exports:
                if name == "add":
                    continue
                try:
                    plugin.call(name, *([1] * len(plugin.exports[name].params)))
                except wasmforge.ArgumentError as error:
                    print("refused", name, error)
                try:
                    plugin.call_raw(name)
                except wasmforge.ArgumentError as error:
                    print("refused raw", name)
            print("add", plugin.add(2, 3), plugin.call_raw("add", 4, 5))
    """, str(path)))
    assert "add 5 9" in out
    if source is SIMD_WAT:
        assert "['add(p0: i32, p1: i32) -> i32', 'lanes(p0: v128) -> i32', 'splat(p0: i32) -> v128']" in out
        assert ("refused splat splat(p0: i32) -> v128 takes or returns v128, which wasmforge cannot pass between "
                "Python and wasm (numbers only: i32, i64, f32, f64); call it from wasm code instead") in out
    else:
        assert "any(p0: anyref) -> i32" in out and "exn(p0: exnref) -> ()" in out
        assert "point(p0: (ref null $struct)) -> i32" in out and "fref() -> funcref" in out
    assert out.count("refused raw") == 2 * (len(out.splitlines()[0].split("', '")) - 1)


def test_an_import_of_v128_is_refused_at_load_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mix.wasm"
    path.write_bytes(wasm(SIMD_IMPORT_WAT))
    out = survived(run_python("""
        import sys, wasmforge
        for options in ({}, {"host_functions": {"mix": lambda v: v}}):
            try:
                wasmforge.load(sys.argv[1], **options)
            except wasmforge.PluginLoadError as error:
                print(error)
    """, str(path)))
    assert out.splitlines() == [
        "mix.wasm imports env.mix(v128) -> (v128), whose v128 values cannot cross into Python: "
        "rebuild the module without it"
    ] * 2


@pytest.mark.parametrize("source", [SIMD_WAT, GC_WAT, SIMD_IMPORT_WAT], ids=["simd", "gc", "simd-import"])
def test_inspect_and_call_list_show_such_types(tmp_path: Path, source: str) -> None:
    path = tmp_path / "foreign.wasm"
    path.write_bytes(wasm(source))
    inspected = run_cli("inspect", str(path), "--json")
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    signatures = [e["signature"] for e in report["exports"]]
    if source is SIMD_IMPORT_WAT:
        assert report["imports"] == [{"module": "env", "name": "mix", "kind": "function", "type": "(v128) -> (v128)"}]
        listed = run_cli("call", "--plugin", str(path), "--list")
        assert_one_line_error(listed, 1, "imports env.mix(v128) -> (v128), whose v128 values cannot cross into Python")
        return
    assert "splat(p0: i32) -> v128" in signatures or "any(p0: anyref) -> i32" in signatures
    listed = run_cli("call", "--plugin", str(path), "--list")
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split("\n")[:-1]) == sorted(signatures)
    if source is SIMD_WAT:
        called = run_cli("call", "--plugin", str(path), "splat", "7")
        assert_one_line_error(called, 2, "splat(p0: i32) -> v128 takes or returns v128")


def test_a_watched_file_that_becomes_a_simd_module(tmp_path: Path) -> None:
    """HotPlugin.from_file serving a plugin whose file becomes a module with v128 in its exports
    (served: the other exports work), then one that imports v128 (refused: the SIMD version stays)."""
    path = tmp_path / "plugin.wasm"
    path.write_bytes(wasm('(module (func (export "answer") (result i32) i32.const 1))'))
    simd = tmp_path / "simd.wasm"
    simd.write_bytes(wasm(SIMD_WAT.replace('(func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)',
                                           '(func (export "answer") (result i32) i32.const 2)')))
    importing = tmp_path / "importing.wasm"
    importing.write_bytes(wasm(SIMD_IMPORT_WAT))
    out = survived(run_python("""
        import os, sys, threading, wasmforge
        path, simd, importing = sys.argv[1:]
        failed = threading.Event()
        with wasmforge.HotPlugin.from_file(path, check=wasmforge.CheckCall("answer"),
                                           on_failure=lambda event: failed.set()) as hot:
            print("before", hot.answer())
            os.replace(simd, path)
            assert hot.wait_for_version(2, timeout=60), "the SIMD version never went live"
            print("after", hot.answer(), sorted(hot.exports))
            try:
                hot.call("splat", 1)
            except wasmforge.ArgumentError as error:
                print("refused", type(error).__name__)
            os.replace(importing, path)
            assert failed.wait(60), "the version that imports v128 was not refused"
            print("kept", hot.answer(), type(hot.last_failure.exception).__name__)
    """, str(path), str(simd), str(importing)))
    assert out.splitlines() == ["before 1", "after 2 ['answer', 'lanes', 'splat']", "refused ArgumentError",
                                "kept 2 PluginLoadError"]


# ---- memories -------------------------------------------------------------------------------


def test_a_memory_exported_under_another_name_is_plugin_memory() -> None:
    plugin = wasmforge.Plugin.from_bytes(wasm(
        '(module (memory (export "O") 1) (data (i32.const 8) "emscripten"))'), name="minified.wasm")
    with plugin:
        assert plugin.memory.read(8, 10) == b"emscripten"
        assert plugin.memory.size == 65536
        assert list(plugin.memories) == ["O"] and plugin.memories["O"].read(8, 3) == b"ems"


def test_several_memories_each_by_name_and_memory_0_as_plugin_memory() -> None:
    wat = """(module
      (memory $a (export "mem") 1)
      (memory $b (export "scratch") 2)
      (data (memory $a) (i32.const 0) "first")
      (data (memory $b) (i32.const 0) "second")
      (func (export "poke") (i32.store8 $b (i32.const 70000) (i32.const 33))))"""
    with wasmforge.Plugin.from_bytes(wasm(wat), name="multi.wasm") as plugin:
        assert plugin.memory.read(0, 5) == b"first"
        assert plugin.memories["scratch"].read(0, 6) == b"second"
        assert plugin.memories["scratch"].size == 2 * 65536
        plugin.poke()
        assert plugin.memories["scratch"].read(70000, 1) == b"!"
        plugin.memories["scratch"].write(1, b"E")
        assert plugin.memories["scratch"].read(0, 6) == b"sEcond"
        with pytest.raises(MemoryAccessError, match=r"read of 4 bytes at 131070 is outside multi.wasm's memory 'scratch' \(131072 bytes\)"):
            plugin.memories["scratch"].read(131070, 4)


def test_memory_0_is_the_one_exported_with_index_0_not_the_first_listed() -> None:
    wat = """(module
      (memory $zero 1) (memory $one 1)
      (export "later" (memory $one)) (export "main" (memory $zero))
      (data (memory $zero) (i32.const 0) "zero") (data (memory $one) (i32.const 0) "one!"))"""
    with wasmforge.Plugin.from_bytes(wasm(wat), name="order.wasm") as plugin:
        assert plugin.memory.read(0, 4) == b"zero"
        assert sorted(plugin.memories) == ["later", "main"]


def test_an_imported_memory_is_made_for_each_instance() -> None:
    wat = """(module
      (import "env" "memory" (memory 2 4))
      (data (i32.const 16) "imported")
      (func (export "grow") (result i32) (memory.grow (i32.const 1)))
      (func (export "peek") (result i32) (i32.load8_u (i32.const 16))))"""
    with wasmforge.Plugin.from_bytes(wasm(wat), name="imports-memory.wasm") as plugin:
        assert plugin.memory.read(16, 8) == b"imported"
        assert plugin.memory.size == 2 * 65536 and plugin.memories == {}
        assert plugin.grow() == 2 and plugin.memory.size == 3 * 65536
        plugin.memory.write(16, b"I")
        assert plugin.peek() == ord("I")
    with pytest.raises(PluginLoadError, match=r"imports env.memory \(a memory: 2 pages \(128 KiB\) at start, at most 4 pages\), which wasmforge could not make"):
        wasmforge.Plugin.from_bytes(wasm(wat), name="imports-memory.wasm", limits=wasmforge.Limits(memory=65536))


def test_inspect_shows_imported_memories_tables_and_globals_as_such(tmp_path: Path) -> None:
    path = tmp_path / "needs.wasm"
    path.write_bytes(wasm("""(module
      (import "env" "memory" (memory 1))
      (import "env" "__indirect_function_table" (table 4 funcref))
      (import "env" "__stack_pointer" (global (mut i32)))
      (import "env" "log" (func (param i32))))"""))
    result = run_cli("inspect", str(path), "--json")
    report = json.loads(result.stdout)
    assert report["imports"] == [
        {"module": "env", "name": "memory", "kind": "memory", "type": "1 pages (64 KiB) at start, no maximum"},
        {"module": "env", "name": "__indirect_function_table", "kind": "table", "type": "funcref table, 4 elements"},
        {"module": "env", "name": "__stack_pointer", "kind": "global", "type": "mutable i32"},
        {"module": "env", "name": "log", "kind": "function", "type": "(i32) -> ()"},
    ]
    assert report["memories"] == [{"name": "env.memory", "kind": "import", "type": "1 pages (64 KiB) at start, no maximum"}]
    text = run_cli("inspect", str(path)).stdout
    assert "  env.__stack_pointer  global mutable i32\n" in text and "  env.memory  memory 1 pages" in text


def test_hints_for_missing_imports_name_the_key_and_the_kind() -> None:
    """A missing function gets the host_functions= key (no trailing space); a global gets no 'callable' advice."""
    with pytest.raises(PluginLoadError) as caught:
        wasmforge.Plugin.from_bytes(wasm("""(module
          (import "env" "__stack_pointer" (global (mut i32)))
          (import "env" "log" (func (param i32))))"""), name="needs.wasm")
    assert str(caught.value) == (
        "needs.wasm imports env.log(i32) -> (), which wasmforge does not provide; supply it as "
        "host_functions={'env.log': callable}; it also imports env.__stack_pointer (a global: mutable i32), "
        "an imported global, which wasmforge does not provide: rebuild the module without it"
    )
    with pytest.raises(PluginLoadError) as caught:
        wasmforge.Plugin.from_bytes(wasm('(module (import "env" "g" (global i64)))'), name="g.wasm")
    assert "callable" not in str(caught.value) and "env.g (a global: immutable i64)" in str(caught.value)
    # An imported table of functions is made, like a memory: nothing to supply.
    with wasmforge.Plugin.from_bytes(wasm('(module (import "env" "t" (table 2 funcref)))'), name="t.wasm"):
        pass


def test_two_imports_of_one_name_share_one_host_function() -> None:
    """Go's gojs module imports some functions twice; one Python function serves both."""
    wat = """(module
      (import "gojs" "runtime.ticks" (func $a (result f64)))
      (import "gojs" "runtime.ticks" (func $b (result f64)))
      (func (export "both") (result f64) (f64.add (call $a) (call $b))))"""
    ticks = iter([1.5, 2.25])
    with wasmforge.Plugin.from_bytes(wasm(wat), name="go.wasm",
                                     host_functions={"gojs.runtime.ticks": lambda: next(ticks)}) as plugin:
        assert plugin.both() == 3.75
    differing = wat.replace("(func $b (result f64))", "(func $b (result i32))").replace(
        "(f64.add (call $a) (call $b))", "(call $a)")
    with pytest.raises(PluginLoadError, match=r"imports gojs.runtime.ticks twice with different types \(gojs.runtime.ticks\(\) -> \(f64\) and gojs.runtime.ticks\(\) -> \(i32\)\)"):
        wasmforge.Plugin.from_bytes(wasm(differing), name="go.wasm", host_functions={"runtime.ticks": lambda: 1.0})


# ---- call_raw and attributes ------------------------------------------------------------------


def test_call_raw_is_built_once_and_underscore_exports_are_attributes_from_the_start() -> None:
    wat = """(module
      (func (export "_malloc") (param i32) (result i32) local.get 0)
      (func (export "memory") (result i32) i32.const 7)
      (func (export "_instances") (result i32) i32.const 8))"""
    with wasmforge.Plugin.from_bytes(wasm(wat), name="emscripten.wasm") as plugin:
        assert plugin._malloc(3) == 3  # before any other call
        assert plugin.call_raw("_malloc", 4) == 4 and plugin._malloc(5) == 5
        first = plugin._raw_functions["_malloc"]
        plugin.call_raw("_malloc", 6)
        assert plugin._raw_functions["_malloc"] is first  # not rebuilt per call
        # Exports named like the plugin's own attributes do not replace them.
        assert plugin.call("memory") == 7 and isinstance(plugin.memory, wasmforge.PluginMemory)
        assert plugin.call("_instances") == 8 and hasattr(plugin._instances, "acquire")
        with pytest.raises(AttributeError):
            plugin._not_an_export
    with pytest.raises(UsageError, match="closed"):
        plugin.call_raw("_malloc", 1)


def test_call_raw_takes_plain_wasm_integers_as_signed() -> None:
    wat = """(module
      (func (export "echo64") (param i64) (result i64) local.get 0)
      (func (export "echo32") (param i32) (result i32) local.get 0))"""
    with wasmforge.Plugin.from_bytes(wasm(wat), name="ints.wasm") as plugin:
        assert plugin.call_raw("echo64", -(2**63)) == -(2**63)
        assert plugin.call_raw("echo32", -1) == -1
        with pytest.raises(ArgumentError, match=r"argument 1 of echo64 \(p0: i64\): 9223372036854775808 is out of range \(-9223372036854775808 to 9223372036854775807\)"):
            plugin.call_raw("echo64", 2**63)
        with pytest.raises(ArgumentError, match="out of range"):
            plugin.call_raw("echo32", 0xFFFFFFFF)


# ---- host functions that reach the caller's memory -------------------------------------------

PRINT_WAT = """(module
  (import "env" "print_str" (func $print (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "hello")
  (func (export "mark") (param i32) (i32.store8 (i32.const 8) (local.get 0)))
  (func (export "run") (call $print (i32.const 8) (i32.const 5))))"""


def test_a_host_function_reads_the_calling_instance_memory_with_several_instances() -> None:
    """The blog series' print_str(ptr, len), with instances=2: each call sees its own instance's memory."""
    seen: list[bytes] = []
    inside = threading.Barrier(2, timeout=60)

    def print_str(caller: Caller, ptr: int, length: int) -> None:
        caller.memory.write(ptr, threading.current_thread().name.encode())  # "J" or "Y"
        inside.wait()  # both calls are inside at once: had they one memory, one write would be lost
        seen.append(caller.memory.read(ptr, length))

    with wasmforge.Plugin.from_bytes(wasm(PRINT_WAT), name="series.wasm", instances=2,
                                     host_functions={"print_str": print_str}) as plugin:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                plugin.run()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=run, name=name) for name in "JY"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors and sorted(seen) == [b"Jello", b"Yello"]


def test_the_caller_memory_reads_writes_and_refuses_outside_and_afterwards() -> None:
    kept: list[Caller] = []

    def print_str(caller: "wasmforge.Caller", ptr: int, length: int) -> None:  # a string annotation counts too
        kept.append(caller)
        assert caller.memory.size == 65536 and caller.plugin == "series.wasm"
        caller.memory.write(ptr, b"J")
        assert caller.memory.read_text(ptr, length) == "Jello"
        with pytest.raises(MemoryAccessError, match=r"read of 8 bytes at 65530 is outside series.wasm's memory \(65536 bytes\)"):
            caller.memory.read(65530, 8)
        with pytest.raises(MemoryAccessError):
            caller.memory.write(-1, b"xy")  # -1 is address 2**32 - 1: outside

    with wasmforge.Plugin.from_bytes(wasm(PRINT_WAT), name="series.wasm",
                                     host_functions={"env.print_str": print_str}) as plugin:
        plugin.run()
        assert plugin.memory.read(8, 5) == b"Jello"
    with pytest.raises(UsageError, match="valid only while its host function runs"):
        kept[0].memory


def test_a_caller_reaches_an_imported_memory() -> None:
    wat = PRINT_WAT.replace('(memory (export "memory") 1)', "").replace(
        '(import "env" "print_str"', '(import "env" "memory" (memory 1)) (import "env" "print_str"')
    seen = []
    with wasmforge.Plugin.from_bytes(wasm(wat), name="imported.wasm",
                                     host_functions={"print_str": lambda p, n: seen.append(p)}) as plugin:
        plugin.run()  # not annotated: plain numbers, no caller
    assert seen == [8]
    got = []

    def print_str(caller: Caller, ptr: int, length: int) -> None:
        got.append(caller.memory.read(ptr, length))

    with wasmforge.Plugin.from_bytes(wasm(wat), name="imported.wasm", host_functions={"print_str": print_str}) as plugin:
        plugin.run()
    assert got == [b"hello"]


# ---- the command line's --host-functions --------------------------------------------------------


def test_cli_commands_take_host_functions_from_a_python_module(tmp_path: Path) -> None:
    plugin = tmp_path / "series.wasm"
    plugin.write_bytes(wasm(PRINT_WAT.replace('(func (export "run")', '(func (export "run") (result i32)').replace(
        "(call $print (i32.const 8) (i32.const 5)))", "(call $print (i32.const 8) (i32.const 5)) (i32.const 42))")))
    (tmp_path / "hostfns.py").write_text(textwrap.dedent("""
        import sys
        import wasmforge

        functions = wasmforge.HostFunctions()

        @functions.function
        def print_str(caller: wasmforge.Caller, ptr: int, length: int) -> None:
            sys.stderr.write("plugin says " + caller.memory.read_text(ptr, length) + "\\n")

        nothing = {}
        not_functions = {"print_str": 3}
    """))
    called = run_cli("-C", str(tmp_path), "call", "--plugin", "series.wasm", "--host-functions", "hostfns:functions", "run")
    assert (called.returncode, called.stdout, called.stderr) == (0, "42\n", "plugin says hello\n")
    inspected = run_cli("-C", str(tmp_path), "inspect", "series.wasm", "--host-functions", "hostfns:nothing", "--json")
    assert json.loads(inspected.stdout)["imports"][0]["provided"] is False
    inspected = run_cli("-C", str(tmp_path), "inspect", "series.wasm", "--host-functions", "hostfns:functions")
    assert "  env.print_str  function (i32, i32) -> ()\n" in inspected.stdout
    assert "(missing)" in run_cli("-C", str(tmp_path), "inspect", "series.wasm", "--host-functions", "hostfns:nothing").stdout
    chained = run_cli("-C", str(tmp_path), "chain", "run", "--dir", ".", "--input", "x", "--host-functions", "hostfns:functions")
    assert_one_line_error(chained, 2, "chain step 1 (series.wasm): run() takes 0 arguments")  # loaded, then checked
    without = run_cli("-C", str(tmp_path), "call", "--plugin", "series.wasm", "run")
    assert_one_line_error(without, 1, "imports env.print_str(i32, i32) -> (), which wasmforge does not provide; "
                                      "supply it as host_functions={'env.print_str': callable}")
    for spec, fragment in [
        ("hostfns", "expected MODULE:ATTRIBUTE, e.g. host:functions"),
        ("nosuchmodule:functions", "cannot import nosuchmodule"),
        ("hostfns:missing", "hostfns has no attribute missing"),
        ("hostfns:not_functions", "host function 'print_str' is int 3, not a callable"),
    ]:
        result = run_cli("-C", str(tmp_path), "call", "--plugin", "series.wasm", "--host-functions", spec, "run")
        assert_one_line_error(result, 2, f"--host-functions {spec}", fragment)


# ---- a real Emscripten module ---------------------------------------------------------------------

SQLJS_VERSION = "1.17.0"
#: sha256 of dist/sql-wasm.wasm in the npm package sql.js 1.17.0 (MIT; SQLite compiled by Emscripten).
SQLJS_WASM_SHA256 = "6918fd54c1192011b85af0365a819411285bb5579b9ae6a7308778a1750a2765"


@pytest.fixture(scope="session")
def sql_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sql.js's Emscripten build of SQLite, from the npm registry (``npm pack``), checked against its hash."""
    cache = Path(os.environ.get("WASMFORGE_TEST_NPM_CACHE") or tmp_path_factory.mktemp("npm"))
    wasm_file = cache / f"sql-wasm-{SQLJS_VERSION}.wasm"
    if not wasm_file.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot fetch sql.js")
        packed = subprocess.run([npm, "pack", f"sql.js@{SQLJS_VERSION}", "--pack-destination", str(cache)],
                                capture_output=True, text=True, timeout=600)
        assert packed.returncode == 0, packed.stderr
        with tarfile.open(cache / f"sql.js-{SQLJS_VERSION}.tgz") as archive:
            member = archive.extractfile("package/dist/sql-wasm.wasm")
            assert member is not None
            wasm_file.write_bytes(member.read())
    assert hashlib.sha256(wasm_file.read_bytes()).hexdigest() == SQLJS_WASM_SHA256
    return wasm_file


#: What sql-wasm.js calls the exports it uses (Emscripten minifies the names).
SQLITE = {"ctors": "P", "malloc": "La", "open": "Ka", "prepare_v2": "U", "step": "V", "column_double": "wa",
          "column_text": "_", "errmsg": "aa", "finalize": "Y"}


def emscripten_stubs(path: Path, calls: list[str]) -> dict:
    """A host function for each of the module's 40 imports (Emscripten's JS glue, here: zeros and a clock)."""
    report = wasmforge.runtime.inspection.inspect_plugin(path)
    stubs = {}
    for item in report["imports"]:
        returns = item["type"].rsplit("-> ", 1)[1]

        def stub(caller: Caller, *args: object, _name: str = item["name"], _returns: str = returns) -> object:
            calls.append(_name)
            assert caller.memory.size >= 338 * 65536  # each reaches the module's memory "O"
            return {"(f64)": 1.7e12, "(i32)": 0, "(i64)": 0, "()": None}[_returns]

        stubs[f"{item['module']}.{item['name']}"] = stub
    return stubs


def test_sqlite_compiled_by_emscripten_runs_a_query(sql_wasm: Path) -> None:
    """sql.js's SQLite: 40 imports served by Python, its memory exported as "O", driven through call_raw."""
    import wasmforge.runtime.inspection

    calls: list[str] = []
    with wasmforge.load(sql_wasm, host_functions=emscripten_stubs(sql_wasm, calls)) as plugin:
        assert list(plugin.memories) == ["O"] and plugin.memory.size == 338 * 65536

        def c_string(text: str) -> int:
            data = text.encode() + b"\0"
            address = plugin.call_raw(SQLITE["malloc"], len(data))
            plugin.memory.write(address, data)
            return address

        def read_c_string(address: int) -> str:
            data = plugin.memory.read(address, 256)
            return data[: data.index(b"\0")].decode()

        def pointer_at(address: int) -> int:
            return int.from_bytes(plugin.memory.read(address, 4), "little")

        plugin.call_raw(SQLITE["ctors"])
        slot = plugin.call_raw(SQLITE["malloc"], 4)
        assert plugin.call_raw(SQLITE["open"], c_string(":memory:"), slot) == 0
        database = pointer_at(slot)
        assert plugin.call_raw(SQLITE["prepare_v2"], database, c_string("select 40 + 2, sqlite_version()"),
                               -1, slot, 0) == 0, read_c_string(plugin.call_raw(SQLITE["errmsg"], database))
        statement = pointer_at(slot)
        assert plugin.call_raw(SQLITE["step"], statement) == 100  # SQLITE_ROW
        assert plugin.call_raw(SQLITE["column_double"], statement, 0) == 42.0
        assert read_c_string(plugin.call_raw(SQLITE["column_text"], statement, 1)).startswith("3.")
        assert plugin.call_raw(SQLITE["finalize"], statement) == 0
    assert calls, "the module called none of its imports"


def test_inspect_and_load_name_what_an_emscripten_module_needs(sql_wasm: Path) -> None:
    inspected = run_cli("inspect", str(sql_wasm), "--json")
    report = json.loads(inspected.stdout)
    assert report["memories"] == [{"name": "O", "kind": "export",
                                   "type": "338 pages (21632 KiB) at start, at most 32768 pages"}]
    assert len(report["imports"]) == 40 and report["wire_version"] is None
    assert {"name": "La", "params": [{"name": "p0", "type": "i32"}], "returns": "i32", "abi": "raw",
            "fallible": False, "signature": "La(p0: i32) -> i32", "doc": ""} in report["exports"]
    loaded = run_cli("call", "--plugin", str(sql_wasm), "--list")
    assert_one_line_error(loaded, 1, "sql-wasm-1.17.0.wasm imports a.a(i32, i32, i32, i32) -> (), ",
                          "and 32 more, which wasmforge does not provide; supply them as "
                          "host_functions={'a.a': callable, 'a.b': callable, ...}")


# ---- real Rust plugins: #[host_fn] imports take a Caller too, from the command line too ------------


@pytest.mark.cargo
def test_a_host_fn_of_a_rust_plugin_takes_a_caller_and_the_cli_supplies_host_functions(boundary, tmp_path: Path) -> None:
    seen = []

    def print_str(caller: Caller, message: str) -> None:
        seen.append((message, caller.plugin, caller.memory.size > 0))

    with wasmforge.load(boundary.wasm, instances=2, host_functions={"print_str": print_str, "lookup": lambda k: None}) as plugin:
        assert plugin.greet_via_host("ada") == "Hello, ada!"
    assert seen == [("greeting ada", "boundary_plugin.wasm", True)]
    (tmp_path / "titles.py").write_text(textwrap.dedent("""
        def print_str(message):
            pass

        def lookup(key):
            return {"ada": "Countess"}.get(key)

        host = [print_str, lookup]
    """))
    called = run_cli("-C", str(tmp_path), "call", "--plugin", str(boundary.wasm), "--host-functions", "titles:host",
                     "greet_via_host", "ada")
    assert (called.returncode, called.stdout) == (0, "Hello, Countess ada!\n"), called.stderr


@pytest.mark.cargo
def test_watch_refuses_host_functions_it_cannot_import(demo) -> None:
    watched = run_cli("-C", str(demo.root), "watch", "--host-functions", "no_such_module:host", timeout=300)
    assert_one_line_error(watched, 2, "--host-functions no_such_module:host: cannot import no_such_module")
