"""HotPlugin's promises, on tiny WAT plugins: check then swap, in-flight calls, callbacks, watching a .wasm;
then from_workspace with real cargo builds."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest
import wasmtime

import wasmforge
from wasmforge import CheckCall, HotPlugin, PluginLoadError, UnknownFunctionError
from wasmforge.events import CallResult, Event, KeptOldVersion, Reloaded, Unchanged
from wat_plugins import write_answer
from watching import TIMEOUT as BUILD_TIMEOUT, add_plugin_source, call_through_reloads, save

TIMEOUT = 10.0


@pytest.fixture
def hot(tmp_path: Path) -> Iterator[HotPlugin]:
    plugin = HotPlugin(name="answer")
    plugin.reload_from(write_answer(tmp_path / "v1.wasm", 1))
    yield plugin
    plugin.close()


def test_calls_go_to_the_version_serving(hot: HotPlugin, tmp_path: Path) -> None:
    assert (hot.answer(), hot.call("answer"), hot.version) == (1, 1, 1)
    answer = hot.answer  # a function taken before a reload calls the new version after it
    hot.reload_from(write_answer(tmp_path / "v2.wasm", 2))
    assert (answer(), hot.version) == (2, 2)
    assert list(hot.exports) == ["answer"]
    assert repr(hot) == "<HotPlugin answer: v2>"


def test_a_call_in_flight_finishes_on_the_old_version(hot: HotPlugin, tmp_path: Path) -> None:
    with hot.pinned() as old:
        hot.reload_from(write_answer(tmp_path / "v2.wasm", 2))
        assert hot.answer() == 2
        assert old.call_raw("answer") == 1  # still open while pinned
    assert repr(old).endswith("closed>")  # and closed once nothing uses it


def test_identical_bytes_are_not_reloaded(hot: HotPlugin, tmp_path: Path) -> None:
    assert hot.reload_from(write_answer(tmp_path / "same.wasm", 1)) is None
    assert hot.version == 1


def test_an_invalid_module_or_failed_check_keeps_the_old_version(tmp_path: Path) -> None:
    failures: list[KeptOldVersion] = []

    def at_most_10(plugin: wasmforge.Plugin) -> int:
        value = plugin.call_raw("answer")
        if value > 10:
            raise ValueError(f"{value} is more than 10")
        return value

    hot = HotPlugin(name="answer", check=at_most_10, on_failure=failures.append)
    hot.reload_from(write_answer(tmp_path / "v1.wasm", 1))
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\x01\0\0\0\x07\x05")
    with pytest.raises(PluginLoadError, match="bad.wasm is"):
        hot.reload_from(tmp_path / "bad.wasm")
    with pytest.raises(ValueError, match="11 is more than 10"):
        hot.reload_from(write_answer(tmp_path / "v2.wasm", 11))
    assert hot.call("answer") == 1 and hot.version == 1
    hot.close()


def test_callbacks_see_each_event_and_a_failing_callback_changes_nothing(tmp_path: Path) -> None:
    seen: list[Event] = []
    reloads: list[Reloaded] = []

    def broken_callback(event: Event) -> None:
        raise RuntimeError("callback bug")

    hot = HotPlugin(name="answer", on_event=seen.append, on_reload=reloads.append, on_failure=broken_callback)
    hot.reload_from(write_answer(tmp_path / "v1.wasm", 1))
    hot.reload_from(write_answer(tmp_path / "same.wasm", 1))
    assert [type(e) for e in seen] == [Reloaded, Unchanged] and [r.version for r in reloads] == [1]
    hot.close()


def test_no_version_yet_and_unknown_functions_are_named(tmp_path: Path) -> None:
    empty = HotPlugin(name="answer")
    with pytest.raises(PluginLoadError, match="answer has no version serving yet: its first build has not finished"):
        empty.answer
    empty.reload_from(write_answer(tmp_path / "v1.wasm", 1))
    with pytest.raises(UnknownFunctionError, match="has no function 'nope'; its functions: answer"):
        empty.nope
    empty.close()
    with pytest.raises(PluginLoadError, match="answer is closed"):
        empty.call("answer")


def test_wait_for_version_times_out_and_wakes(hot: HotPlugin, tmp_path: Path) -> None:
    assert not hot.wait_for_version(2, timeout=0.01)
    reloader = threading.Thread(target=hot.reload_from, args=(write_answer(tmp_path / "v2.wasm", 2),))
    reloader.start()
    assert hot.wait_for_version(2, timeout=TIMEOUT)
    reloader.join()


def test_many_threads_many_reloads_no_failed_call(tmp_path: Path) -> None:
    """Two threads call without pause while the plugin is swapped 50 times: every call answers, old or new."""
    versions = [write_answer(tmp_path / f"v{i}.wasm", i) for i in (1, 2)]
    hot = HotPlugin(name="answer")
    hot.reload_from(versions[0])
    results = call_through_reloads(hot, hot.answer, versions, reloads=50)
    assert set(results) == {1, 2} and hot.version == 51
    hot.close()


# ---- watching a .wasm file ----


def test_from_file_reloads_a_file_replaced_or_rewritten(tmp_path: Path) -> None:
    wasm = write_answer(tmp_path / "plugin.wasm", 1)
    with HotPlugin.from_file(wasm, check=CheckCall("answer")) as hot:
        assert hot.answer() == 1
        staged = write_answer(tmp_path / ".plugin.wasm.tmp", 2)
        os.replace(staged, wasm)  # an atomic write, as cargo and editors do
        assert hot.wait_for_version(2, timeout=TIMEOUT) and hot.answer() == 2
        write_answer(wasm, 3)  # an in-place write
        assert hot.wait_for_version(3, timeout=TIMEOUT) and hot.answer() == 3


def test_from_file_keeps_serving_through_a_bad_write(tmp_path: Path) -> None:
    wasm = write_answer(tmp_path / "plugin.wasm", 1)
    failed = threading.Event()
    with HotPlugin.from_file(wasm, on_failure=lambda event: failed.set()) as hot:
        wasm.write_text("not wasm")
        assert failed.wait(TIMEOUT)
        assert hot.answer() == 1 and hot.last_failure is not None and hot.last_failure.stage == "load"
        write_answer(wasm, 2)
        assert hot.wait_for_version(2, timeout=TIMEOUT) and hot.answer() == 2 and hot.last_failure is None


def test_from_file_refuses_a_file_that_is_not_a_plugin(tmp_path: Path) -> None:
    (tmp_path / "plugin.wasm").write_text("(module)")
    with pytest.raises(PluginLoadError, match="holds WebAssembly text"):
        HotPlugin.from_file(tmp_path / "plugin.wasm")


def test_close_stops_the_reload_thread(tmp_path: Path) -> None:
    hot = HotPlugin.from_file(write_answer(tmp_path / "plugin.wasm", 1))
    assert not hot.wait_closed(timeout=0.01)
    hot.close()
    assert hot.wait_closed(timeout=TIMEOUT)
    assert [t for t in threading.enumerate() if t.name.startswith("wasmforge-reload")] == []


def test_exported_from_the_package() -> None:
    assert wasmforge.HotPlugin is HotPlugin and "HotPlugin" in wasmforge.__all__
    assert wasmforge.CheckCall.__module__ == "wasmforge.devloop.hot" and "CheckCall" in wasmforge.__all__


LOOP = wasmtime.wat2wasm('(module (func (export "spin") (loop $l (br $l))) (func (export "answer") (result i32) i32.const 7))')
LOOP_V2 = wasmtime.wat2wasm('(module (func (export "spin") (loop $l (br $l))) (func (export "answer") (result i32) i32.const 8))')
GREETER = wasmtime.wat2wasm(
    '(module (import "env" "base" (func $base (result i32)))'
    ' (func (export "answer") (result i32) (i32.add (call $base) (i32.const 1))))'
)


def test_load_options_apply_to_every_version(tmp_path: Path) -> None:
    path = tmp_path / "limited.wasm"
    path.write_bytes(LOOP)
    with HotPlugin.from_file(path, timeout=0.1, memory_limit="8MiB") as hot:
        with pytest.raises(wasmforge.PluginTimeout):
            hot.spin()
        path.write_bytes(LOOP_V2)
        assert hot.wait_for_version(2, timeout=30)
        assert hot.answer() == 8
        with hot.pinned() as plugin:
            assert plugin.limits.timeout == 0.1 and plugin.limits.memory == 8 << 20
        with pytest.raises(wasmforge.PluginTimeout):
            hot.spin()
    # A version that imports a host function gets it too.
    path.write_bytes(LOOP)
    with HotPlugin.from_file(path, host_functions={"base": lambda: 41}) as hot:
        assert hot.answer() == 7
        path.write_bytes(GREETER)
        assert hot.wait_for_version(2, timeout=30)
        assert hot.answer() == 42


def test_unknown_load_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown plugin option\\(s\\): colour"):
        HotPlugin.from_file(write_answer(tmp_path / "a.wasm", 1), colour="blue")


# ---- checks that never return, several checks, a recovery ----

#: "spin" loops forever in LOOP (and LOOP_V2); here it returns.
SPIN_RETURNS = wasmtime.wat2wasm(
    '(module (func (export "spin")) (func (export "answer") (result i32) i32.const 6))'
)


def test_a_check_that_never_returns_refuses_the_version_within_the_time_limit(tmp_path: Path) -> None:
    hot = HotPlugin(name="spin", check=[CheckCall("answer"), CheckCall("spin")], check_timeout=0.5)
    path = tmp_path / "plugin.wasm"
    path.write_bytes(SPIN_RETURNS)
    hot.reload_from(path)
    path.write_bytes(LOOP)
    with pytest.raises(wasmforge.PluginTimeout, match=r"spin\(\) did not return within 0.5 s, the time limit for checks"):
        hot.reload_from(path)
    assert hot.version == 1 and hot.answer() == 6
    with hot.pinned() as plugin:
        assert plugin.limits.cancellable  # so that a check can be stopped
    hot.close()


def test_a_watched_version_whose_check_hangs_is_refused_and_the_next_save_goes_live(tmp_path: Path) -> None:
    """Issue 11: a save that makes the check loop forever must not wedge the loop."""
    path = tmp_path / "plugin.wasm"
    path.write_bytes(SPIN_RETURNS)
    failures: list[KeptOldVersion] = []
    failed = threading.Event()

    def on_failure(event: KeptOldVersion) -> None:
        failures.append(event)
        failed.set()

    with HotPlugin.from_file(path, check=CheckCall("spin"), check_timeout=1.0, on_failure=on_failure) as hot:
        path.write_bytes(LOOP)
        assert failed.wait(TIMEOUT)
        (failure,) = failures
        assert failure.stage == "check" and failure.version == 1
        assert failure.error == "spin() did not return within 1 s, the time limit for checks (check_timeout)"
        assert isinstance(failure.exception, wasmforge.PluginTimeout)
        path.write_bytes(wasmtime.wat2wasm('(module (func (export "spin")) (func (export "answer") (result i32) i32.const 9))'))
        assert hot.wait_for_version(2, timeout=TIMEOUT) and hot.answer() == 9


def test_without_a_check_time_limit_versions_are_not_made_cancellable(tmp_path: Path) -> None:
    with HotPlugin.from_file(write_answer(tmp_path / "a.wasm", 1), check=CheckCall("answer"), check_timeout=None) as hot:
        with hot.pinned() as plugin:
            assert not plugin.limits.cancellable
    with HotPlugin.from_file(write_answer(tmp_path / "b.wasm", 1)) as hot:  # no check: nothing to stop
        with hot.pinned() as plugin:
            assert not plugin.limits.cancellable


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan"), float("inf"), 1e10])
def test_a_bad_check_timeout_is_refused(bad: object) -> None:
    with pytest.raises(wasmforge.OptionError, match=r"check_timeout must be a positive number of seconds up to "
                                                    r"31536000 \(a year\), or None for no limit; got"):
        HotPlugin(name="x", check_timeout=bad)  # type: ignore[arg-type]


def test_several_checks_each_report_their_result(tmp_path: Path) -> None:
    seen: list[Event] = []
    hot = HotPlugin(name="answer", check=(CheckCall("answer"), CheckCall("double", 21)), on_event=seen.append)
    hot.reload_from(write_answer(tmp_path / "v1.wasm", 1, extra_export="double"))
    results = [(e.function, e.args, e.value) for e in seen if isinstance(e, CallResult)]
    assert results == [("answer", (), 1), ("double", (21,), 21)]
    assert len(hot.checks) == 2
    hot.close()


def test_a_fix_that_restores_the_serving_bytes_is_reported_as_a_recovery(tmp_path: Path) -> None:
    """An app listening for failures sees the failure end, even though nothing new was loaded."""
    wasm = write_answer(tmp_path / "plugin.wasm", 1)
    good = wasm.read_bytes()
    failed, recovered = threading.Event(), threading.Event()
    unchanged: list[Unchanged] = []

    def on_unchanged(event: Unchanged) -> None:
        unchanged.append(event)
        recovered.set()

    with HotPlugin.from_file(wasm, on_failure=lambda e: failed.set(), on_unchanged=on_unchanged) as hot:
        wasm.write_text("not wasm")
        assert failed.wait(TIMEOUT) and hot.last_failure is not None
        wasm.write_bytes(good)  # the edit undone
        assert recovered.wait(TIMEOUT)
        assert unchanged == [Unchanged(version=1, size=len(good), recovered=True)]
        assert hot.last_failure is None and hot.version == 1


# ---- from_workspace: real cargo builds (the workspace of tests/watching.py) ----


@pytest.mark.cargo
def test_from_workspace_keeps_answering_through_a_broken_build(watched_workspace: Path, lib_rs: Path) -> None:
    failed = threading.Event()
    with wasmforge.HotPlugin.from_workspace(watched_workspace, on_failure=lambda e: failed.set()) as hot:
        assert hot.add(1, 2) == 3 and hot.version == 1
        save(lib_rs, add_plugin_source(1).replace("i32 {", "i32 { let"))
        assert failed.wait(BUILD_TIMEOUT)
        assert hot.add(1, 2) == 3  # the last good version answers
        assert hot.last_failure is not None and hot.last_failure.stage == "build"
        assert "error" in hot.diagnostics
        save(lib_rs, add_plugin_source(40))
        assert hot.wait_for_version(2, timeout=BUILD_TIMEOUT)
        assert hot.add(1, 2) == 43 and hot.last_failure is None


@pytest.mark.cargo
def test_from_workspace_raises_when_the_first_build_fails(watched_workspace: Path, lib_rs: Path) -> None:
    save(lib_rs, "this is not rust")
    with pytest.raises(wasmforge.BuildError, match="build failed: error"):
        wasmforge.HotPlugin.from_workspace(watched_workspace)


@pytest.mark.cargo
def test_two_threads_calling_through_fifty_reloads_of_real_plugins_never_fail(watched_workspace: Path, lib_rs: Path, tmp_path: Path) -> None:
    """Real plugins, real swaps: every call answers, from the old version or the new one."""
    from wasmforge.workspace.build import build
    from wasmforge.workspace.settings import load_settings

    settings = load_settings(watched_workspace)
    versions = []
    for offset in (0, 1000):
        save(lib_rs, add_plugin_source(offset))
        (artifact,) = build(settings).artifacts
        versions.append(Path(shutil.copy(artifact.path, tmp_path / f"add-{offset}.wasm")))
    hot = wasmforge.HotPlugin(name="add")
    hot.reload_from(versions[0])
    results = call_through_reloads(hot, lambda: hot.add(1, 2), versions, reloads=50)
    assert set(results) == {3, 1003} and hot.version == 51
    hot.close()
