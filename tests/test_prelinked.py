"""Instances made from one pre-linked module (runtime/imports.py, ImportPlan.prelinked).

A module whose only imports are wasmforge's runtime ones (and WASI) is linked once per
compiled module, and every instance of every load of it is made from that; the host side
of those imports finds its instance's state through the store, not a closure. These tests
hold that each instance still sees only its own memory and state, as when each had a linker.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from wasmforge import PluginMemoryLimit, PluginPanic

# {"message":"boom ?"} at 16, its "?" at 33.
_WAT = r'''
(module
  (import "wasmforge" "panic" (func $panic (param i32 i32)))
  (import "wasmforge" "out_of_memory" (func $oom (param i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 16) "{\"message\":\"boom ?\"}")
  (func (export "boom") (call $panic (i32.const 16) (i32.const 20)) unreachable)
  (func (export "boom_with") (param i32)
    (i32.store8 (i32.const 33) (local.get 0))
    (call $panic (i32.const 16) (i32.const 20))
    unreachable)
  (func (export "starve") (param i32) (call $oom (local.get 0)) unreachable)
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls)))
'''


@pytest.fixture
def wasm(tmp_path: Path) -> Path:
    path = tmp_path / "hooks.wasm"
    path.write_bytes(wasmtime.wat2wasm(_WAT))
    return path


def test_loads_of_one_file_share_one_prelinked_module(wasm: Path) -> None:
    with wasmforge.load(wasm) as first, wasmforge.load(wasm) as second:
        compiled = first._loaded.compiled
        assert second._loaded.compiled is compiled  # remembered in this process
        prelinked = compiled.reused[("prelinked", False)]
        assert isinstance(prelinked, wasmtime.InstancePre)
        assert first.count() == 1 and first.count() == 2 and second.count() == 1  # still two instances
    with wasmforge.load(wasm) as third:
        assert third._loaded.compiled.reused[("prelinked", False)] is prelinked


def test_each_panic_report_comes_from_its_own_instances_memory(wasm: Path) -> None:
    with wasmforge.load(wasm) as first, wasmforge.load(wasm) as second:
        first.memory.write(33, b"A")
        second.memory.write(33, b"B")
        with pytest.raises(PluginPanic) as one:
            second.boom()
        with pytest.raises(PluginPanic) as other:
            first.boom()
        assert (one.value.panic_message, other.value.panic_message) == ("boom B", "boom A")
        assert first.count() == 1  # the trapped instance was replaced, and no report is left behind
        with pytest.raises(PluginPanic, match=r"boom \?$"):
            first.boom()


def test_the_out_of_memory_report_reaches_only_its_instance(wasm: Path) -> None:
    with wasmforge.load(wasm) as first, wasmforge.load(wasm) as second:
        with pytest.raises(PluginMemoryLimit, match="asked for 4 KiB more"):
            first.starve(4096)
        with pytest.raises(PluginPanic, match=r"boom \?$"):
            second.boom()


def test_a_pools_instances_each_report_their_own_panic(wasm: Path) -> None:
    results: dict[str, str] = {}
    with wasmforge.load(wasm, instances=2) as pool:
        start = threading.Barrier(2, timeout=60)

        def explode(letter: str) -> None:
            start.wait()
            for _ in range(50):
                try:
                    pool.boom_with(ord(letter))
                except PluginPanic as panic:
                    results.setdefault(letter, panic.panic_message)
                    if panic.panic_message != f"boom {letter}":
                        results[letter] = panic.panic_message
        threads = [threading.Thread(target=explode, args=(letter,)) for letter in "XY"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert results == {"X": "boom X", "Y": "boom Y"}


def test_a_setup_export_of_the_wrong_type_is_refused_at_every_load(tmp_path: Path) -> None:
    path = tmp_path / "odd.wasm"
    path.write_bytes(wasmtime.wat2wasm('(module (func (export "__wf_init") (param i32)))'))
    for _ in range(2):  # the type check's verdict is kept only when it passes
        with pytest.raises(wasmforge.PluginLoadError, match=r"exports __wf_init as \(i32\) -> \(\), not \(\) -> \(\)"):
            wasmforge.load(path)


def test_without_the_internals_prelinking_needs_each_instance_links_its_own(
        wasm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wasmtime-py whose internals state_of cannot read: slower loads, the same answers and reports."""
    from wasmforge.runtime import imports

    monkeypatch.setattr(imports, "PRELINK_SUPPORTED", False)
    data = wasm.read_bytes()
    other = wasm.with_name("unlinked.wasm")
    other.write_bytes(data + b"\x00\x04\x03abc")  # a custom section "abc": new bytes, the same module
    with wasmforge.load(other) as first, wasmforge.load(other) as second:
        assert ("prelinked", False) not in first._loaded.compiled.reused
        first.memory.write(33, b"A")
        second.memory.write(33, b"B")
        with pytest.raises(PluginPanic, match="boom A"):
            first.boom()
        with pytest.raises(PluginPanic, match="boom B"):
            second.boom()
        assert first.count() == 1 and second.count() == 1


def test_modules_deserialized_afresh_share_the_linker_and_what_their_content_decides(
        wasm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin.from_bytes of bytes seen before gets a new module (from the disk cache) each time: it is
    pre-linked with its engine's one linker, and its setup exports are not worked out again."""
    data = wasm.read_bytes()
    with wasmforge.Plugin.from_bytes(data) as first:
        made: list[object] = []

        class CountingLinker(wasmtime.Linker):
            def __init__(self, engine: wasmtime.Engine) -> None:
                made.append(engine)
                super().__init__(engine)

        monkeypatch.setattr(wasmtime, "Linker", CountingLinker)
        with wasmforge.Plugin.from_bytes(data) as second:
            one, other = first._loaded.compiled, second._loaded.compiled
            assert other.module is not one.module and other.engine is one.engine
            assert other.reused[("prelinked", False)] is not one.reused[("prelinked", False)]
            assert other.shared is one.shared and "setups" in one.shared
            assert made == []
            first.memory.write(33, b"A")
            with pytest.raises(PluginPanic, match="boom A"):
                first.boom()
            with pytest.raises(PluginPanic, match=r"boom \?$"):
                second.boom()
            assert second.count() == 1


def test_an_engine_of_one_plugin_is_freed_with_it(wasm: Path) -> None:
    """Only shared engines keep a linker: a plugin with a timeout has an engine of its own, which must
    not outlive it (each reserves memory, and a long-running host loads many)."""
    import gc
    import weakref

    plugin = wasmforge.load(wasm, timeout=5)
    assert plugin.count() == 1
    engine = weakref.ref(plugin._loaded.engine)
    plugin.close()
    del plugin
    gc.collect()
    assert engine() is None


def test_a_first_load_walks_the_modules_exports_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wasmtime-py makes a Python object per export and type at each `module.exports` (about 0.1 ms for a
    real plugin): the signatures, names, memories and setup exports all come from one walk, at the first load
    of a content; a start after a trap walks nothing."""
    from wasmforge.runtime.compiled import forget_facts

    path = tmp_path / "reactor.wasm"
    path.write_bytes(wasmtime.wat2wasm(_WAT.replace('(memory (export "memory") 1)', '(memory (export "memory") 1)\n'
                                                     '  (func (export "_initialize"))')))
    walks: list[int] = []
    exports = wasmtime.Module.exports

    def counted(module: wasmtime.Module) -> object:
        walks.append(1)
        return exports.fget(module)  # type: ignore[attr-defined]

    forget_facts()
    monkeypatch.setattr(wasmtime.Module, "exports", property(counted))
    with wasmforge.load(path) as plugin:
        assert len(walks) == 1
        assert plugin._loaded.compiled.shared["setups"] == ("_initialize",)
        with pytest.raises(PluginPanic):
            plugin.boom()
        assert plugin.count() == 1
    with wasmforge.Plugin.from_bytes(path.read_bytes()) as again:
        assert again.count() == 1
    assert len(walks) == 1


def test_what_one_content_decided_never_serves_another(tmp_path: Path) -> None:
    """Compiled.shared is keyed by the SHA-256 of the bytes: a module that differs only in its setup export's type
    (after a good one was loaded and its verdict kept) is refused, and the good one still loads."""
    good = '(module (memory (export "memory") 1) (func (export "__wf_init")) (func (export "one") (result i32) i32.const 1))'
    bad = good.replace('(func (export "__wf_init"))', '(func (export "__wf_init") (param i32))')
    for _ in range(2):
        with wasmforge.Plugin.from_bytes(wasmtime.wat2wasm(good)) as plugin:
            assert plugin.call_raw("one") == 1
        with pytest.raises(wasmforge.PluginLoadError, match=r"exports __wf_init as \(i32\) -> \(\)"):
            wasmforge.Plugin.from_bytes(wasmtime.wat2wasm(bad))
