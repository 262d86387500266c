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


@pytest.mark.cargo
def test_infinite_loop_times_out_and_the_next_call_works(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, timeout=0.2) as plugin:
        started = time.monotonic()
        with pytest.raises(PluginTimeout, match=r"exceeded its time limit of 0.2 s") as caught:
            plugin.spin(True)  # loops forever: only the timeout ends it
        assert time.monotonic() - started >= 0.2  # not early; how soon after is measured in bench/, not here
        assert_names_plugin_and_function(caught.value, "hostile_plugin.wasm", "spin")
        assert plugin.spin(False) == 10
        assert plugin.fine(1) == 2


@pytest.mark.cargo
def test_wat_infinite_loop_times_out(bystander) -> None:
    with wat("traps.wat", timeout=0.1) as plugin:
        with pytest.raises(PluginTimeout):
            plugin.loop_forever()
        assert plugin.answer() == 42


@pytest.mark.cargo
def test_fuel_budget(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, fuel=2_000_000) as plugin:
        with pytest.raises(PluginFuelExhausted, match="used up its fuel budget of 2000000"):
            plugin.spin(True)
        assert plugin.spin(False) == 10  # a fresh budget each call


@pytest.mark.cargo
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


@pytest.mark.cargo
def test_cancel_needs_a_cancellable_plugin(demo_plugin) -> None:
    with pytest.raises(UsageError, match="pass cancellable=True or timeout="):
        demo_plugin.cancel()


def test_a_start_function_that_never_returns_cannot_hang_loading() -> None:
    with pytest.raises(PluginLoadError, match="did not finish starting within its time limit of 0.1 s"):
        wat("start_loops.wat", timeout=0.1)


# ---- memory and stack -----------------------------------------------------------------------


@pytest.mark.cargo
def test_memory_bomb_hits_the_memory_limit(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm, memory_limit="64MiB") as plugin:
        with pytest.raises(PluginMemoryLimit, match=r"ran out of memory: it asked for 8 MiB more with .* in use \(memory limit 64 MiB\)") as caught:
            plugin.hog_memory(8)
        assert_names_plugin_and_function(caught.value, "hostile_plugin.wasm", "hog_memory")
        assert plugin.fine(41) == 42


@pytest.mark.cargo
def test_wat_memory_bomb_hits_the_memory_limit(bystander) -> None:
    with wat("traps.wat", memory=1 << 20) as plugin:
        with pytest.raises(PluginMemoryLimit, match="trapped with its memory at the limit of 1 MiB"):
            plugin.grow_until_refused()
        assert plugin.answer() == 42


@pytest.mark.cargo
def test_wat_memory_bomb_growing_in_steps_hits_the_memory_limit(bystander) -> None:
    # 1 MiB at a time under a 4 MiB limit: the grow to 4.06 MiB is refused with 3.06 MiB in use,
    # and the module traps on `unreachable`, nowhere near the limit itself.
    with wat("grow_in_steps.wat", memory=4 << 20) as plugin:
        with pytest.raises(PluginMemoryLimit, match=r"bomb\(\) in grow_in_steps.wasm trapped with 3.1 MiB in use, too close "
                                                     r"to its memory limit of 4 MiB to grow again: .*unreachable") as caught:
            plugin.bomb()
        assert_names_plugin_and_function(caught.value, "grow_in_steps.wasm", "bomb")
        assert plugin.answer() == 42
    # A trap with ample room left is a trap, not a memory bomb.
    with wat("grow_in_steps.wat", memory=64 << 20) as plugin:
        with pytest.raises(PluginTrap) as trapped:
            plugin.grow_then_trap(16)
        assert not isinstance(trapped.value, PluginMemoryLimit) and trapped.value.trap_code == "unreachable"


@pytest.mark.cargo
def test_arguments_larger_than_the_memory_limit(demo) -> None:
    with wasmforge.load(demo.wasm, memory_limit="4MiB") as plugin:
        with pytest.raises(PluginMemoryLimit, match=r"could not allocate 8 MiB for the arguments \(memory limit 4 MiB\)"):
            plugin.length("x" * (8 << 20))
        assert plugin.length("ok") == 2


@pytest.mark.cargo
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


@pytest.mark.cargo
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


@pytest.mark.cargo
def test_rust_division_by_zero_is_a_panic(hostile_wasm, bystander) -> None:
    with wasmforge.load(hostile_wasm) as plugin:
        with pytest.raises(PluginPanic, match="attempt to divide by zero"):
            plugin.divide(1, 0)
        assert plugin.divide(6, 3) == 2


@pytest.mark.cargo
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


@pytest.mark.cargo
def test_no_exported_memory(bystander) -> None:
    with wat("no_memory.wat") as plugin:
        with pytest.raises(PluginProtocolError, match="no_memory.wasm exports no memory, which buffer calls need"):
            plugin.echo("x")


# ---- files that are not plugins ---------------------------------------------------------------


@pytest.mark.cargo
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


@pytest.mark.cargo
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


@pytest.mark.cargo
def test_inspect_refuses_a_file_over_max_module_size_without_reading_it(tmp_path: Path, bystander) -> None:
    from wasmforge.runtime.inspection import inspect_plugin

    path = tmp_path / "huge.wasm"
    with open(path, "wb") as handle:
        handle.truncate(100 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(PluginLoadError, match=r"huge.wasm is 100 MiB, over the 64 MiB limit for plugin files"):
            inspect_plugin(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    path.write_bytes(bytes(wasmtime.wat2wasm("(module)")))
    with pytest.raises(PluginLoadError, match=r"huge.wasm is 8 bytes, over the 4 bytes limit"):
        inspect_plugin(path, max_module_size=4)


def not_a_file(kind: str, directory: Path) -> Path:
    """A path in ``directory`` naming a FIFO, a socket or a device, by that name."""
    import os
    import socket

    if kind == "device":
        return Path("/dev/zero")  # readable forever: reading it all would never end
    path = directory / f"{kind}.wasm"
    if kind == "fifo":
        os.mkfifo(path)  # opening it to read waits for a writer that never comes
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    return path


def finishes(function, *args):
    """``function(*args)``'s exception (or result), failing instead of hanging if it blocks."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(function(*args))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), f"{function.__name__} blocked on a file that is not a file"
    return outcome[0]


@pytest.mark.cargo
@pytest.mark.parametrize("kind, words", [("fifo", "a named pipe (FIFO)"), ("socket", "a socket"),
                                         ("device", "a character device")])
def test_a_fifo_socket_or_device_in_place_of_a_plugin_is_refused_at_once(tmp_path: Path, bystander, kind: str,
                                                                          words: str) -> None:
    from wasmforge.runtime.inspection import inspect_plugin

    path = not_a_file(kind, tmp_path)
    for attempt in (wasmforge.load, inspect_plugin, wasmforge.HotPlugin.from_file):
        error = finishes(attempt, path)
        assert isinstance(error, PluginLoadError), error
        assert str(error) == f"{path} is {words}, not a .wasm file; name a regular file"
    from wasmforge.runtime.chain import load_paths

    chain_error = finishes(load_paths, [path])
    assert isinstance(chain_error, PluginLoadError), chain_error
    for command in (["call", "--plugin", str(path), "answer"], ["inspect", str(path)]):
        assert_one_line_error(run_cli(*command, cwd=tmp_path, timeout=120), 2, f"is {words}, not a file; name a .wasm file")


@pytest.mark.cargo
def test_a_fifo_in_place_of_wasmforge_toml_is_an_error_not_a_hang(tmp_path: Path, bystander) -> None:
    import os

    plugin = tmp_path / "answer.wasm"
    plugin.write_bytes(bytes(wasmtime.wat2wasm('(module (func (export "answer") (result i32) i32.const 42))')))
    os.mkfifo(tmp_path / "wasmforge.toml")
    assert_one_line_error(run_cli("call", "--plugin", str(plugin), "answer", cwd=tmp_path, timeout=120), 2,
                          "wasmforge.toml is a named pipe (FIFO), not a regular file; it must be a TOML file")
    from wasmforge.workspace.settings import load_settings

    error = finishes(load_settings, tmp_path)
    assert isinstance(error, wasmforge.ConfigError), error


@pytest.mark.cargo
def test_a_hot_plugin_keeps_serving_when_its_file_becomes_a_fifo(tmp_path: Path, bystander) -> None:
    import os

    from wat_plugins import answer_module

    path = tmp_path / "answer.wasm"
    path.write_bytes(answer_module(1))
    failures: list = []
    with wasmforge.HotPlugin.from_file(path, on_failure=failures.append, debounce_ms=10) as hot:
        replacement = tmp_path / "fifo"
        os.mkfifo(replacement)
        replacement.replace(path)
        deadline = time.monotonic() + 120
        while not failures:
            assert time.monotonic() < deadline, "no reload was attempted"
            time.sleep(0.02)
        assert "is a named pipe (FIFO), not a .wasm file" in failures[0].error
        assert hot.answer() == 1  # the last good version still serves
        staged = tmp_path / "staged.wasm"
        staged.write_bytes(answer_module(2))
        staged.replace(path)
        assert hot.wait_for_version(2, timeout=120), hot.last_failure
        assert hot.answer() == 2


@pytest.mark.cargo
def test_sha256_pin(demo, bystander) -> None:
    digest = hashlib.sha256(demo.wasm.read_bytes()).hexdigest()
    with wasmforge.load(demo.wasm, sha256=digest.upper()) as plugin:
        assert plugin.add(2, 2) == 4
    with pytest.raises(PluginIntegrityError, match=f"does not match its pinned sha256: expected {'0' * 64}, got {digest}"):
        wasmforge.load(demo.wasm, sha256="0" * 64)
    assert issubclass(PluginIntegrityError, PluginLoadError)


# ---- the same limits from the command line and wasmforge.toml -------------------------------------


@pytest.mark.cargo
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


@pytest.mark.cargo
def test_limits_from_wasmforge_toml(hostile, tmp_path) -> None:
    import shutil

    workspace = tmp_path / "limited"
    copy_workspace(hostile.root, workspace)
    config = workspace / "wasmforge.toml"
    # The generated file lists the [limits] keys commented out: set them there.
    text = config.read_text()
    assert "# timeout = " in text and '# memory_limit = "' in text
    text = re.sub(r"^# timeout = .*$", "timeout = 0.2", text, flags=re.MULTILINE)
    config.write_text(re.sub(r'^# memory_limit = ".*$', 'memory_limit = "32MiB"', text, flags=re.MULTILINE))
    assert_one_line_error(run_cli("call", "spin", "true", cwd=workspace), 1, "exceeded its time limit of 0.2 s")
    assert_one_line_error(run_cli("call", "hog_memory", "4", cwd=workspace), 1, "(memory limit 32 MiB)")
    # A flag beats the file.
    assert_one_line_error(run_cli("call", "spin", "true", "--timeout", "0.3", cwd=workspace), 1, "time limit of 0.3 s")
    config.write_text(config.read_text().replace('memory_limit = "32MiB"', 'memory_limit = "plenty"'))
    assert_one_line_error(run_cli("call", "fine", "1", cwd=workspace), 2, "[limits]", "'plenty' is not a size")
