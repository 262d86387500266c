"""The compiled-module cache: hits, and never trusting a file wasmforge did not write."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Callable

import pytest
import wasmtime

import wasmforge
from wasmforge.runtime import cache
from wasmforge.runtime.cache import MODULE_TRAILER, ModuleCache, engine_fingerprint
from wat_plugins import answer_module


@pytest.fixture
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def compiler(engine: wasmtime.Engine, data: bytes, counter: list) -> Callable[[], wasmtime.Module]:
    def compile() -> wasmtime.Module:
        counter.append(1)
        return wasmtime.Module(engine, data)

    return compile


def answer(engine: wasmtime.Engine, module: wasmtime.Module) -> int:
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, module, [])
    return instance.exports(store)["answer"](store)  # type: ignore[operator, no-any-return]


def test_second_load_comes_from_the_cache(tmp_path: Path, engine: wasmtime.Engine) -> None:
    modules = ModuleCache(tmp_path / "c")
    data, compiled = answer_module(7), []
    first = modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    second = modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert len(compiled) == 1 and answer(engine, first) == answer(engine, second) == 7
    assert (modules.stats.hits, modules.stats.misses, modules.stats.stored) == (1, 1, 1)


def test_directory_is_private_and_entries_are_hmac_sealed(tmp_path: Path, engine: wasmtime.Engine) -> None:
    modules = ModuleCache(tmp_path / "c")
    data = answer_module(1)
    modules.load_or_compile(engine, data, compiler(engine, data, []))
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "c" / "key").stat().st_mode) == 0o600
    entry = modules.entry_path(engine, data)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert entry.read_bytes().endswith(MODULE_TRAILER)
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".tmp")]  # written via tmp + rename


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: blob[: len(blob) // 2], id="truncated"),
        pytest.param(lambda blob: blob[:100] + bytes([blob[100] ^ 1]) + blob[101:], id="one-bit-flipped"),
        pytest.param(lambda blob: b"", id="empty"),
        pytest.param(lambda blob: blob[:-40] + b"\0" * 32 + blob[-8:], id="hmac-zeroed"),
    ],
)
def test_a_corrupt_entry_is_recompiled_and_replaced(
    tmp_path: Path, engine: wasmtime.Engine, damage: Callable[[bytes], bytes]
) -> None:
    modules = ModuleCache(tmp_path / "c")
    data, compiled = answer_module(3), []
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    entry = modules.entry_path(engine, data)
    entry.write_bytes(damage(entry.read_bytes()))
    module = modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert answer(engine, module) == 3 and len(compiled) == 2
    assert modules.stats.rejected == 1
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert len(compiled) == 2 and modules.stats.hits == 1  # the replacement is trusted


def test_a_planted_module_is_never_loaded(tmp_path: Path, engine: wasmtime.Engine) -> None:
    """Someone swaps in a genuine compiled module, of other code, with a made-up or copied seal."""
    modules = ModuleCache(tmp_path / "c")
    good, evil = answer_module(1), answer_module(666)
    modules.load_or_compile(engine, evil, compiler(engine, evil, []))
    evil_entry = modules.entry_path(engine, evil).read_bytes()
    planted = modules.entry_path(engine, good)
    for forgery in (evil_entry, bytes(wasmtime.Module(engine, evil).serialize()) + b"\0" * 32 + MODULE_TRAILER):
        planted.write_bytes(forgery)
        compiled: list = []
        module = modules.load_or_compile(engine, good, compiler(engine, good, compiled))
        assert answer(engine, module) == 1 and compiled == [1]
    assert modules.stats.rejected == 2


def test_an_entry_sealed_with_another_key_is_rejected(tmp_path: Path, engine: wasmtime.Engine) -> None:
    data = answer_module(5)
    elsewhere = ModuleCache(tmp_path / "other")
    elsewhere.load_or_compile(engine, data, compiler(engine, data, []))
    modules = ModuleCache(tmp_path / "c")
    modules.load_or_compile(engine, answer_module(0), compiler(engine, answer_module(0), []))  # makes its key
    target = modules.entry_path(engine, data)
    target.write_bytes(elsewhere.entry_path(engine, data).read_bytes())
    compiled: list = []
    assert answer(engine, modules.load_or_compile(engine, data, compiler(engine, data, compiled))) == 5
    assert compiled == [1] and modules.stats.rejected == 1


def test_engines_with_other_settings_use_other_entries(tmp_path: Path, engine: wasmtime.Engine) -> None:
    config = wasmtime.Config()
    config.consume_fuel = True
    fuel_engine = wasmtime.Engine(config)
    assert engine_fingerprint(engine) == engine_fingerprint(wasmtime.Engine())
    assert engine_fingerprint(engine) != engine_fingerprint(fuel_engine)
    modules = ModuleCache(tmp_path / "c")
    data = answer_module(2)
    assert modules.entry_path(engine, data) != modules.entry_path(fuel_engine, data)
    compiled: list = []
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    modules.load_or_compile(fuel_engine, data, compiler(fuel_engine, data, compiled))
    assert len(compiled) == 2


def test_fingerprints_do_not_keep_engines_alive() -> None:
    """An engine per plugin (each with its own limits) must not pile up in the fingerprint memo."""
    import gc
    import weakref

    engine = wasmtime.Engine()
    engine_fingerprint(engine)
    gone = weakref.ref(engine)
    del engine
    gc.collect()
    assert gone() is None


def test_a_sealed_entry_this_engine_cannot_load_is_recompiled(tmp_path: Path, engine: wasmtime.Engine) -> None:
    """A mismatched entry (say, from another wasmtime) under the right name, sealed by us: wasmtime refuses it."""
    config = wasmtime.Config()
    config.consume_fuel = True
    fuel_engine = wasmtime.Engine(config)
    modules = ModuleCache(tmp_path / "c")
    data = answer_module(4)
    modules.load_or_compile(fuel_engine, data, compiler(fuel_engine, data, []))
    os.replace(modules.entry_path(fuel_engine, data), modules.entry_path(engine, data))
    # Re-seal it under its new name, as if wasmforge itself had written it there.
    entry = modules.entry_path(engine, data)
    payload = entry.read_bytes()[: -len(MODULE_TRAILER) - 32]
    key = (tmp_path / "c" / "key").read_bytes()
    entry.write_bytes(payload + cache._mac(key, entry.name, payload) + MODULE_TRAILER)
    compiled: list = []
    assert answer(engine, modules.load_or_compile(engine, data, compiler(engine, data, compiled))) == 4
    assert compiled == [1] and modules.stats.rejected == 1


def test_a_directory_others_can_write_is_not_used(tmp_path: Path, engine: wasmtime.Engine, caplog) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    modules = ModuleCache(shared)
    data, compiled = answer_module(1), []
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert len(compiled) == 2 and not (shared / "key").exists()
    assert "is writable by other users; `chmod go-w" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_a_directory_of_another_user_is_not_used(tmp_path: Path, engine: wasmtime.Engine) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    modules = ModuleCache(theirs)
    compiled: list = []
    data = answer_module(1)
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert compiled == [1] and not (theirs / "key").exists()


def test_least_recently_used_entries_go_past_the_limit(tmp_path: Path, engine: wasmtime.Engine) -> None:
    modules = ModuleCache(tmp_path / "c")
    sizes = []
    for value in range(3):
        data = answer_module(value)
        modules.load_or_compile(engine, data, compiler(engine, data, []))
        sizes.append(modules.entry_path(engine, data).stat().st_size)
        os.utime(modules.entry_path(engine, data), (1000 + value, 1000 + value))
    modules.limit = sizes[1] + sizes[2] + sizes[0] // 2
    data = answer_module(3)
    modules.load_or_compile(engine, data, compiler(engine, data, []))
    kept = sorted(p.name for p in (tmp_path / "c" / "modules").glob("*.cwasm"))
    expected = sorted(modules.entry_path(engine, answer_module(v)).name for v in (2, 3))
    assert kept == expected


def test_environment_chooses_or_disables_the_cache(tmp_path: Path) -> None:
    assert cache.cache_directory({"WASMFORGE_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache.cache_directory({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "wasmforge"
    assert cache.cache_directory({}) == Path.home() / ".cache" / "wasmforge"  # the environment given, not os.environ
    assert cache.cache_directory({"XDG_CACHE_HOME": ""}) == Path.home() / ".cache" / "wasmforge"
    assert cache.cache_directory({"WASMFORGE_CACHE": "off", "WASMFORGE_CACHE_DIR": str(tmp_path)}) is None


def test_load_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMFORGE_CACHE_DIR", str(tmp_path / "c"))
    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(11))
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 11
    copy = tmp_path / "copy.wasm"  # another file: not remembered in this process, so the disk cache answers
    copy.write_bytes(wasm.read_bytes())
    with wasmforge.load(copy) as plugin:
        assert plugin.call_raw("answer") == 11
    stats = cache.default_cache().stats  # type: ignore[union-attr]
    assert (stats.misses, stats.hits) == (1, 1)


def test_an_unchanged_file_loaded_again_is_not_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMFORGE_CACHE_DIR", str(tmp_path / "c"))
    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(11))
    for _ in range(3):
        with wasmforge.load(wasm) as plugin:
            assert plugin.call_raw("answer") == 11
    stats = cache.default_cache().stats  # type: ignore[union-attr]
    assert (stats.misses, stats.hits) == (1, 0)  # remembered in this process: not even the disk cache
    replacement = tmp_path / "new.wasm"
    replacement.write_bytes(answer_module(12))
    replacement.replace(wasm)  # an atomic save: new inode
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 12
    wasm.write_bytes(answer_module(13))  # rewritten in place: new mtime
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 13


def test_the_default_cache_follows_the_environment_between_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """default_cache() remembers what it worked out for the environment it saw: any change of a variable it reads
    (the directory, XDG_CACHE_HOME, HOME, turning it off) is seen at the very next load."""
    monkeypatch.delenv("WASMFORGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = cache.default_cache()
    assert first is not None and first.directory == tmp_path / "xdg" / "wasmforge"
    assert cache.default_cache() is first
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache().directory == tmp_path / "home" / ".cache" / "wasmforge"  # type: ignore[union-attr]
    monkeypatch.setenv("WASMFORGE_CACHE_DIR", str(tmp_path / "c"))
    assert cache.default_cache().directory == tmp_path / "c"  # type: ignore[union-attr]
    monkeypatch.setenv("WASMFORGE_CACHE", "off")
    assert cache.default_cache() is None
    monkeypatch.delenv("WASMFORGE_CACHE")
    assert cache.default_cache().directory == tmp_path / "c"  # type: ignore[union-attr]


def test_one_relative_name_in_two_directories_runs_each_files_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load() remembers compiled files by absolute path (the working directory joined to a relative name):
    the same relative name loaded from another directory is another file, and the bytes decide anyway."""
    monkeypatch.setenv("WASMFORGE_CACHE_DIR", str(tmp_path / "c"))
    for number, directory in ((21, tmp_path / "one"), (22, tmp_path / "two"), (23, tmp_path / "one")):
        directory.mkdir(exist_ok=True)
        (directory / "answer.wasm").write_bytes(answer_module(number))
        monkeypatch.chdir(directory)
        with wasmforge.load("answer.wasm") as plugin:
            assert plugin.call_raw("answer") == number
        with wasmforge.load(Path("answer.wasm")) as plugin:
            assert plugin.call_raw("answer") == number


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMFORGE_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("WASMFORGE_CACHE", "off")
    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(1))
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 1
    assert not (tmp_path / "c").exists()


# ---- what runs is what was read (issue 11, item 2) -------------------------------------------------


def put_in_place_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Other bytes of the same size and mtime, in the same inode: what `cp -p`, `rsync -t` or `tar x` leave."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def test_other_bytes_with_the_same_size_and_mtime_run_as_themselves(tmp_path: Path) -> None:
    import hashlib

    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(11))
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 11
    put_in_place_keeping_size_and_mtime(wasm, answer_module(12))
    with wasmforge.load(wasm) as plugin:
        assert plugin.call_raw("answer") == 12
    # A pin describes the code that runs: the new bytes' hash runs the new bytes...
    with wasmforge.load(wasm, sha256=hashlib.sha256(answer_module(12)).hexdigest()) as plugin:
        assert plugin.call_raw("answer") == 12
    # ...and the old bytes' hash no longer loads at all.
    with pytest.raises(wasmforge.PluginIntegrityError, match="does not match its pinned sha256"):
        wasmforge.load(wasm, sha256=hashlib.sha256(answer_module(11)).hexdigest())


def test_a_pinned_load_after_a_same_size_swap_runs_the_pinned_bytes(tmp_path: Path) -> None:
    import hashlib

    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(21))
    digest = hashlib.sha256(answer_module(21)).hexdigest()
    with wasmforge.load(wasm, sha256=digest) as plugin:
        assert plugin.call_raw("answer") == 21
    put_in_place_keeping_size_and_mtime(wasm, answer_module(22))
    with wasmforge.load(wasm, sha256=hashlib.sha256(answer_module(22)).hexdigest()) as plugin:
        assert plugin.call_raw("answer") == 22


def test_load_dir_runs_the_bytes_in_the_directory(tmp_path: Path) -> None:
    (tmp_path / "a.wasm").write_bytes(answer_module(31))
    with wasmforge.load_dir(tmp_path) as chain:
        assert chain.plugins[0].call_raw("answer") == 31
    put_in_place_keeping_size_and_mtime(tmp_path / "a.wasm", answer_module(32))
    with wasmforge.load_dir(tmp_path) as chain:
        assert chain.plugins[0].call_raw("answer") == 32


def test_hot_plugin_from_file_serves_the_new_bytes_of_a_same_size_swap(tmp_path: Path) -> None:
    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(41))
    reloaded: list = []
    with wasmforge.HotPlugin.from_file(wasm, on_reload=reloaded.append) as hot:
        assert hot.answer() == 41
        put_in_place_keeping_size_and_mtime(wasm, answer_module(42))
        assert hot.wait_for_version(2, timeout=120), hot.last_failure
        assert hot.answer() == 42
        # Loading the path by hand in the same process runs the same new bytes.
        with wasmforge.load(wasm) as plugin:
            assert plugin.call_raw("answer") == 42


def test_hot_plugin_reload_from_runs_the_bytes_it_read(tmp_path: Path) -> None:
    # What from_workspace's reload loop does after each build: reload_from(artifact).
    wasm = tmp_path / "answer.wasm"
    wasm.write_bytes(answer_module(51))
    hot = wasmforge.HotPlugin(wasmforge.load(wasm), name="answer")
    with hot:
        put_in_place_keeping_size_and_mtime(wasm, answer_module(52))
        assert hot.reload_from(wasm) is not None
        assert hot.answer() == 52


# ---- files that are not files ----------------------------------------------------------------------


def in_a_thread(function: Callable[[], object]) -> object:
    """``function()``'s result, failing (not hanging) if it blocks: a FIFO would block a plain open."""
    import threading

    outcome: list = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "it blocked"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def test_a_fifo_planted_as_a_cache_entry_is_replaced(tmp_path: Path, engine: wasmtime.Engine) -> None:
    modules = ModuleCache(tmp_path / "c")
    data, compiled = answer_module(61), []
    modules.load_or_compile(engine, answer_module(1), compiler(engine, answer_module(1), []))  # makes the directory
    entry = modules.entry_path(engine, data)
    os.mkfifo(entry, 0o600)
    module = in_a_thread(lambda: modules.load_or_compile(engine, data, compiler(engine, data, compiled)))
    assert answer(engine, module) == 61  # type: ignore[arg-type]
    assert (len(compiled), modules.stats.rejected) == (1, 1)
    assert stat.S_ISREG(entry.stat().st_mode)  # compiled again and stored over the FIFO
    assert answer(engine, modules.load_or_compile(engine, data, compiler(engine, data, compiled))) == 61
    assert len(compiled) == 1


def test_a_fifo_in_place_of_the_cache_key_makes_the_cache_step_aside(tmp_path: Path, engine: wasmtime.Engine,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "c"
    (directory / "modules").mkdir(parents=True, mode=0o700)
    directory.chmod(0o700)
    os.mkfifo(directory / "key", 0o600)
    modules = ModuleCache(directory)
    data, compiled = answer_module(71), []
    module = in_a_thread(lambda: modules.load_or_compile(engine, data, compiler(engine, data, compiled)))
    assert answer(engine, module) == 71  # type: ignore[arg-type]
    assert len(compiled) == 1 and modules.stats.stored == 0
    assert "is not a wasmforge cache key" in caplog.text


# ---- an entry verified once in this process (issue 17: loading without re-reading it) ------------


def _at_rest(entry: Path) -> None:
    """Waits until the entry's ctime is old enough to be remembered as verified (cache.AT_REST_NS)."""
    from wasmforge.runtime.cache import AT_REST_NS

    while time.time_ns() - entry.stat().st_ctime_ns <= AT_REST_NS:
        time.sleep(0.1)


def test_an_entry_verified_before_is_mapped_without_being_read_again(
        tmp_path: Path, engine: wasmtime.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmforge.runtime import cache as cache_module

    modules = ModuleCache(tmp_path / "c")
    data, compiled = answer_module(4), []
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    _at_rest(modules.entry_path(engine, data))
    modules.load_or_compile(engine, data, compiler(engine, data, compiled))  # read and verified: remembered
    reads: list[Path] = []
    real_read = cache_module.read_fd
    monkeypatch.setattr(cache_module, "read_fd", lambda fd, path, limit: reads.append(path) or real_read(fd, path, limit))
    module = modules.load_or_compile(engine, data, compiler(engine, data, compiled))
    assert answer(engine, module) == 4 and reads == [] and compiled == [1]
    assert modules.stats.hits == 2


@pytest.mark.parametrize("tamper", ["in place, same size and mtime", "another entry renamed over it"])
def test_an_entry_changed_after_it_was_verified_is_verified_again(
        tmp_path: Path, engine: wasmtime.Engine, tamper: str) -> None:
    """What was verified once is trusted again only while it is provably the same file: a tampered entry
    (its mtime even put back) or another entry renamed over it is read, checked, and never run."""
    modules = ModuleCache(tmp_path / "c")
    good, evil = answer_module(1), answer_module(2)
    modules.load_or_compile(engine, good, compiler(engine, good, []))
    modules.load_or_compile(engine, evil, compiler(engine, evil, []))
    entry, evil_entry = modules.entry_path(engine, good), modules.entry_path(engine, evil)
    assert entry.stat().st_size == evil_entry.stat().st_size  # so the one can stand in for the other in place
    _at_rest(entry)
    _at_rest(evil_entry)
    for data in (good, evil):  # both verified and remembered
        modules.load_or_compile(engine, data, compiler(engine, data, []))
    assert modules.stats.rejected == 0
    if tamper.startswith("in place"):
        before = entry.stat()
        with open(entry, "r+b") as file:  # the same inode, the same size: a loadable module of other code
            file.write(evil_entry.read_bytes())
        os.utime(entry, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert (entry.stat().st_size, entry.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    else:
        os.replace(evil_entry, entry)  # a genuine, verified entry: of other code, under this name
    compiled: list = []
    module = modules.load_or_compile(engine, good, compiler(engine, good, compiled))
    assert answer(engine, module) == 1 and compiled == [1]
    assert modules.stats.rejected == 1


def test_bytes_loaded_before_are_not_parsed_again_and_other_bytes_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """compile_plugin reads a module's metadata and exports once per content (SHA-256), not per load."""
    from wasmforge.runtime import compiled as compiled_module

    parsed: list[str] = []
    real = compiled_module.parse_metadata
    monkeypatch.setattr(compiled_module, "parse_metadata", lambda payloads, source: parsed.append(source) or real(payloads, source))
    first, second = answer_module(91, "twice"), answer_module(92, "twice")
    for name in ("a.wasm", "b.wasm"):
        with wasmforge.Plugin.from_bytes(first, name=name) as plugin:
            assert plugin.answer() == 91 and plugin.twice(4) == 4 and plugin.name == name
            assert sorted(plugin.exports) == ["answer", "twice"]
    with wasmforge.Plugin.from_bytes(second, name="c.wasm") as plugin:  # one byte differs: read afresh
        assert plugin.answer() == 92
    assert parsed == ["a.wasm", "c.wasm"]


def test_the_same_bytes_with_imports_load_on_engines_of_their_own_and_shared_ones() -> None:
    """Import types belong to one engine: what is remembered per content never crosses engines
    (handing another engine's types to a linker aborts the whole process)."""
    module = wasmtime.wat2wasm('(module (import "env" "f" (func $f (result i32)))'
                               ' (func (export "g") (result i32) call $f))')
    for limits in (wasmforge.Limits(timeout=30), wasmforge.Limits(timeout=30), None, wasmforge.Limits(cancellable=True), None):
        with wasmforge.Plugin.from_bytes(bytes(module), name="imports.wasm", limits=limits,
                                         host_functions={"env.f": lambda: 5}) as plugin:
            assert plugin.g() == 5
