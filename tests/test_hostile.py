"""Hostile and broken plugins cost the host one clear exception and nothing else.

Every case here is a row of the table in docs/SECURITY.md."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from conftest import scaffold_with_plugin
from helpers import copy_workspace, assert_one_line_error, run_cli
from wasmforge import (
    PluginCancelled,
    PluginFuelExhausted,
    PluginIntegrityError,
    PluginLoadError,
    PluginMemoryLimit,
    PluginPanic,
    PluginProtocolError,
    PluginStackOverflow,
    PluginTimeout,
    PluginTrap,
    UsageError,
)

HOSTILE = Path(__file__).parent / "hostile"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target):
    return scaffold_with_plugin(tmp_path_factory.mktemp("hostile"), "hostile", HOSTILE / "hostile.rs")


@pytest.fixture(scope="module")
def hostile_wasm(hostile) -> Path:
    return hostile.wasm


@pytest.fixture
def bystander(demo):
    """Another plugin in the same process: it must keep working whatever the hostile one does."""
    with wasmforge.load(demo.wasm) as plugin:
        yield plugin
        assert plugin.add(1, 2) == 3


def wat(name: str, **options) -> wasmforge.Plugin:
    data = bytes(wasmtime.wat2wasm((HOSTILE / name).read_text()))
    return wasmforge.Plugin.from_bytes(data, name=name.replace(".wat", ".wasm"), limits=wasmforge.Limits(**options))


def assert_names_plugin_and_function(error: wasmforge.PluginCallError, plugin: str, function: str) -> None:
    assert (error.plugin, error.function) == (plugin, function)
    assert f"{function}() in {plugin}" in str(error)


# ---- time -----------------------------------------------------------------------------------


def test_infinite_loop_times_out_and_the_next_call_works(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, timeout=0.2) as plugin:
        started = time.monotonic()
        with pytest.raises(PluginTimeout, match=r"exceeded its time limit of 0.2 s") as caught:
            plugin.spin(True)  # loops forever: only the timeout ends it
        assert time.monotonic() - started >= 0.2  # not early; how soon after is measured in bench/, not here
        assert_names_plugin_and_function(caught.value, "hostile_plugin.wasm", "spin")
        assert plugin.spin(False) == 10
        assert plugin.fine(1) == 2


def test_wat_infinite_loop_times_out(bystander) -> None:
    with wat("traps.wat", timeout=0.1) as plugin:
        with pytest.raises(PluginTimeout):
            plugin.loop_forever()
        assert plugin.answer() == 42


def test_fuel_budget(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, fuel=2_000_000) as plugin:
        with pytest.raises(PluginFuelExhausted, match="used up its fuel budget of 2000000"):
            plugin.spin(True)
        assert plugin.spin(False) == 10  # a fresh budget each call


def test_cancel_from_another_thread(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, cancellable=True) as plugin:
        outcome: list = []

        def run() -> None:
            try:
                plugin.spin(True)
            except Exception as error:  # noqa: BLE001 - the test inspects it
                outcome.append(error)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        # cancel() only affects calls already running, and nothing says when the
        # worker's call starts: cancel until it has ended.
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            plugin.cancel()
            worker.join(timeout=0.05)
        assert not worker.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], PluginCancelled)
        assert str(outcome[0]) == "spin() in hostile_plugin.wasm was cancelled"
        assert plugin.spin(False) == 10


def test_cancel_needs_a_cancellable_plugin(demo_plugin) -> None:
    with pytest.raises(UsageError, match="pass cancellable=True or timeout="):
        demo_plugin.cancel()


def test_a_start_function_that_never_returns_cannot_hang_loading() -> None:
    with pytest.raises(PluginLoadError, match="did not finish starting within its time limit of 0.1 s"):
        wat("start_loops.wat", timeout=0.1)


# ---- memory and stack -----------------------------------------------------------------------


def test_memory_bomb_hits_the_memory_limit(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, memory_limit="64MiB") as plugin:
        with pytest.raises(PluginMemoryLimit, match=r"ran out of memory: it asked for 8 MiB more with .* in use \(memory limit 64 MiB\)") as caught:
            plugin.hog_memory(8)
        assert_names_plugin_and_function(caught.value, "hostile_plugin.wasm", "hog_memory")
        assert plugin.fine(41) == 42


def test_wat_memory_bomb_hits_the_memory_limit(bystander) -> None:
    with wat("traps.wat", memory=1 << 20) as plugin:
        with pytest.raises(PluginMemoryLimit, match="trapped with its memory at the limit of 1 MiB"):
            plugin.grow_until_refused()
        assert plugin.answer() == 42


def test_arguments_larger_than_the_memory_limit(demo) -> None:
    with wasmforge.load(demo.wasm, memory_limit="4MiB") as plugin:
        with pytest.raises(PluginMemoryLimit, match=r"could not allocate 8 MiB for the arguments \(memory limit 4 MiB\)"):
            plugin.length("x" * (8 << 20))
        assert plugin.length("ok") == 2


def test_unbounded_recursion_overflows_the_stack(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm) as plugin:
        with pytest.raises(PluginStackOverflow, match="overflowed the wasm stack") as caught:
            plugin.recurse(0)
        assert caught.value.trap_code == "stack_overflow"
        assert plugin.fine(1) == 2
    with wat("traps.wat") as plugin:
        with pytest.raises(PluginStackOverflow):
            plugin.recurse(0)


# ---- traps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function, args, error, code",
    [
        ("read_out_of_bounds", (0xFFFFFFF0,), PluginTrap, "memory_out_of_bounds"),
        ("hit_unreachable", (True,), PluginTrap, "unreachable"),
    ],
)
def test_rust_traps(hostile_wasm, bystander, function, args, error, code) -> None:
    with wasmforge.load(hostile_wasm) as plugin:
        with pytest.raises(error) as caught:
            plugin.call(function, *args)
        assert caught.value.trap_code == code
        assert_names_plugin_and_function(caught.value, "hostile_plugin.wasm", function)
        assert plugin.fine(1) == 2


def test_rust_division_by_zero_is_a_panic(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm) as plugin:
        with pytest.raises(PluginPanic, match="attempt to divide by zero"):
            plugin.divide(1, 0)
        assert plugin.divide(6, 3) == 2


@pytest.mark.parametrize(
    "function, args, code",
    [
        ("load_out_of_bounds", (), "memory_out_of_bounds"),
        ("divide_by_zero", (7,), "integer_division_by_zero"),
        ("trap", (), "unreachable"),
    ],
)
def test_wat_traps(bystander, function, args, code) -> None:
    with wat("traps.wat") as plugin:
        with pytest.raises(PluginTrap) as caught:
            plugin.call(function, *args)
        assert caught.value.trap_code == code
        assert_names_plugin_and_function(caught.value, "traps.wasm", function)
        assert plugin.answer() == 42


def test_no_exported_memory(bystander) -> None:
    with wat("no_memory.wat") as plugin:
        with pytest.raises(PluginProtocolError, match="no_memory.wasm exports no memory, which buffer calls need"):
            plugin.echo("x")


# ---- files that are not plugins ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"\0asm\x01\0\0\0\x01\x85\x80", "is truncated"),
        (b"MZ\x90\0 not wasm at all", "is not a WebAssembly module"),
        (b"(module (func))", r"holds WebAssembly text \(WAT\)"),
        (b"\0asm\x0d\0\x01\0", "is a WebAssembly component"),
    ],
)
def test_files_that_are_not_plugins(tmp_path: Path, bystander, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    with pytest.raises(PluginLoadError, match=message):
        wasmforge.load(path)


def test_a_100_mb_file_is_refused_without_reading_it(tmp_path: Path, bystander) -> None:
    path = tmp_path / "huge.wasm"
    with open(path, "wb") as handle:
        handle.truncate(100 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(PluginLoadError, match=r"huge.wasm is 100 MiB, over the 64 MiB limit for plugin files; pass max_module_size="):
            wasmforge.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # reading it would have taken 100 MiB


def test_sha256_pin(demo, bystander) -> None:
    digest = hashlib.sha256(demo.wasm.read_bytes()).hexdigest()
    with wasmforge.load(demo.wasm, sha256=digest.upper()) as plugin:
        assert plugin.add(2, 2) == 4
    with pytest.raises(PluginIntegrityError, match=f"does not match its pinned sha256: expected {'0' * 64}, got {digest}"):
        wasmforge.load(demo.wasm, sha256="0" * 64)
    assert issubclass(PluginIntegrityError, PluginLoadError)


# ---- the same limits from the command line and wasmforge.toml -------------------------------------


def test_cli_limit_flags(hostile_wasm) -> None:
    plugin = ["call", "--plugin", str(hostile_wasm)]
    assert_one_line_error(run_cli(*plugin, "spin", "true", "--timeout", "0.2"), 1,
                          "spin() in hostile_plugin.wasm exceeded its time limit of 0.2 s")
    assert_one_line_error(run_cli(*plugin, "hog_memory", "4", "--memory-limit", "32MiB"), 1,
                          "ran out of memory", "(memory limit 32 MiB)")
    assert_one_line_error(run_cli(*plugin, "spin", "true", "--fuel", "100000"), 1, "used up its fuel budget of 100000")
    assert_one_line_error(run_cli(*plugin, "fine", "1", "--sha256", "ab" * 32), 1, "does not match its pinned sha256")
    assert_one_line_error(run_cli(*plugin, "fine", "1", "--timeout", "-1"), 2, "argument --timeout: '-1' must be more than 0")
    assert_one_line_error(run_cli(*plugin, "fine", "1", "--memory-limit", "lots"), 2, "'lots' is not a size")
    assert run_cli(*plugin, "fine", "1", "--timeout", "5", "--memory-limit", "16MiB").stdout == "2\n"


def test_limits_from_wasmforge_toml(hostile, tmp_path) -> None:
    import shutil

    workspace = tmp_path / "limited"
    copy_workspace(hostile.root, workspace)
    config = workspace / "wasmforge.toml"
    # The generated file lists the [limits] keys commented out: set them there.
    text = config.read_text()
    assert "# timeout = " in text and '# memory = "' in text
    text = re.sub(r"^# timeout = .*$", "timeout = 0.2", text, flags=re.MULTILINE)
    config.write_text(re.sub(r'^# memory = ".*$', 'memory = "32MiB"', text, flags=re.MULTILINE))
    assert_one_line_error(run_cli("call", "spin", "true", cwd=workspace), 1, "exceeded its time limit of 0.2 s")
    assert_one_line_error(run_cli("call", "hog_memory", "4", cwd=workspace), 1, "(memory limit 32 MiB)")
    # A flag beats the file.
    assert_one_line_error(run_cli("call", "spin", "true", "--timeout", "0.3", cwd=workspace), 1, "time limit of 0.3 s")
    config.write_text(config.read_text().replace('memory = "32MiB"', 'memory = "plenty"'))
    assert_one_line_error(run_cli("call", "fine", "1", cwd=workspace), 2, "[limits]", "'plenty' is not a size")
