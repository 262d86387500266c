"""`wasmforge watch`, the command, end to end: real files, real watchdog, real cargo and real wasmtime.

(HotPlugin.from_workspace, the library behind it, is tested in test_hot.py; stopping the command in
every way it can be stopped, in test_watch_stop.py.)"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from helpers import REPO, assert_one_line_error, run_cli
from watching import TIMEOUT, WatchProcess, add_plugin_source, build_processes_in, kinds, poll_until, save

pytestmark = pytest.mark.cargo


@pytest.fixture
def workspace(watched_workspace: Path) -> Path:
    return watched_workspace


@pytest.fixture
def watch(workspace: Path, lib_rs: Path) -> Iterator[WatchProcess]:
    """`wasmforge watch --json --call 'add 1 2'`, past its first build (add(1, 2) = 3)."""
    process = WatchProcess(workspace, "--json", "--call", "add 1 2")
    try:
        process.until_result(3)
        yield process
    finally:
        process.close()


def test_one_save_is_one_build_one_reload_and_the_new_answer(watch: WatchProcess, lib_rs: Path) -> None:
    first = watch.seen
    assert kinds(first)[:4] == ["watching", "build_started", "build_finished", "reloaded"]
    assert first[0]["mode"] == "native" and first[1]["reason"] == "start" and first[3]["version"] == 1
    save(lib_rs, add_plugin_source(1))
    events = watch.until_result(4)
    assert kinds(events) == ["change", "build_started", "build_finished", "reloaded", "call_result", "cycle_finished"]
    change, started, finished, reloaded, result, cycle = events
    assert change["paths"] == [str(lib_rs)]
    assert started == {"event": "build_started", "crate": "watched-plugin", "profile": "debug", "reason": "change"}
    assert finished["ok"] is True and finished["seconds"] > 0 and finished["artifact"].endswith("watched_plugin.wasm")
    assert finished["size"] == Path(finished["artifact"]).stat().st_size
    assert reloaded["version"] == 2 and reloaded["size"] == finished["size"] and reloaded["seconds"] > 0
    assert reloaded["size_change"] == reloaded["size"] - first[3]["size"]
    assert reloaded["exports"] == {"added": [], "removed": [], "changed": []}
    check_seconds = result.pop("seconds")
    assert check_seconds > 0
    assert result == {"event": "call_result", "function": "add", "args": ["1", "2"], "ok": True, "value": 4,
                      "error": None}
    # From the save to the new answer: at least the build, the reload and the check.
    assert cycle["outcome"] == "reloaded" and cycle["version"] == 2
    assert cycle["seconds"] >= finished["seconds"] + reloaded["seconds"] + check_seconds
    assert watch.interrupt() == 130


def test_thirty_saves_in_a_second_are_at_most_two_builds_and_the_last_one_runs(
    watch: WatchProcess, lib_rs: Path
) -> None:
    pace = threading.Event()  # never set: its wait() paces the saves
    saved_at = []
    for offset in range(1, 31):
        save(lib_rs, add_plugin_source(offset))
        saved_at.append(time.monotonic())
        pace.wait(0.025)
    events = watch.until_result(33)
    # On a loaded machine a pause between two saves can outlast the 50 ms quiet
    # window; each such pause may rightly start one more build.
    pauses = sum(1 for before, after in zip(saved_at, saved_at[1:]) if after - before >= 0.045)
    assert kinds(events).count("build_started") <= 2 + pauses, (kinds(events), pauses)
    assert [e["value"] for e in events if e["event"] == "call_result"][-1] == 33
    assert watch.interrupt() == 130
    later = [line for line in _rest(watch) if '"build_started"' in line]
    assert later == []  # nothing was left to build


def test_a_broken_edit_keeps_the_old_version_then_the_fix_goes_live(watch: WatchProcess, lib_rs: Path) -> None:
    save(lib_rs, add_plugin_source(1).replace("one + two", "one + two +"))
    events = watch.until(lambda e: e["event"] == "kept_old_version")
    finished = next(e for e in events if e["event"] == "build_finished")
    assert finished["ok"] is False and "error" in finished["diagnostics"] and "lib.rs" in finished["diagnostics"]
    assert finished["error"].startswith("build failed: error")
    assert events[-1] == {"event": "kept_old_version", "stage": "build", "error": finished["error"], "version": 1}
    save(lib_rs, add_plugin_source(7))
    events = watch.until_result(10)
    assert [e["version"] for e in events if e["event"] == "reloaded"] == [2]
    assert watch.interrupt() == 130


def test_an_atomic_rename_save_is_built(watch: WatchProcess, lib_rs: Path) -> None:
    staged = lib_rs.with_name(".lib.rs.tmp-1234")
    staged.write_text(add_plugin_source(2))
    os.replace(staged, lib_rs)  # what vim (backupcopy=no), VS Code and JetBrains do
    events = watch.until_result(5)
    assert kinds(events).count("build_started") == 1
    assert watch.interrupt() == 130


@pytest.mark.parametrize("mode", [[], ["--poll"]], ids=["native", "polling"])
def test_a_slow_atomic_save_through_a_hidden_temporary_is_one_build(workspace: Path, lib_rs: Path, mode: list) -> None:
    """An editor writes .lib.rs.XXXX.new and, on a loaded machine, renames it over lib.rs well after the
    debounce window (and a poll) has passed: still one change, of lib.rs, and one build."""
    process = WatchProcess(workspace, "--json", "--call", "add 1 2", *mode)
    try:
        process.until_result(3)
        staged = lib_rs.with_name(".lib.rs.Xk3q.new")
        staged.write_text(add_plugin_source(4))
        threading.Event().wait(0.8)  # the slow editor: longer than the 50 ms window and the 300 ms poll
        os.replace(staged, lib_rs)
        events = process.until_result(7)
        assert kinds(events).count("build_started") == 1, kinds(events)
        (change,) = [e for e in events if e["event"] == "change"]
        assert change["paths"] == [str(lib_rs)], change
        assert process.interrupt() == 130
    finally:
        process.close()


def test_a_quick_atomic_save_through_any_temporary_name_is_that_files_change(
    watch: WatchProcess, lib_rs: Path
) -> None:
    """Not hidden, not a known editor pattern: renamed onto lib.rs within the window, it is lib.rs's change."""
    staged = lib_rs.with_name("lib.rs.Xk3q.new")
    staged.write_text(add_plugin_source(6))
    os.replace(staged, lib_rs)
    events = watch.until_result(9)
    assert events[0] == {"event": "change", "paths": [str(lib_rs)], "kinds": ["moved"]}, events[0]
    assert kinds(events).count("build_started") == 1
    assert watch.interrupt() == 130


@pytest.mark.skipif(shutil.which("sed") is None, reason="no sed")
def test_sed_in_place_is_one_change_to_the_file_edited(watch: WatchProcess, lib_rs: Path) -> None:
    """GNU sed -i writes src/sedXXXXXX and renames it over lib.rs: the temporary is no changed file."""
    subprocess.run(["sed", "-i", "s/two + 0/two + 5/", str(lib_rs)], check=True)
    events = watch.until_result(8)
    assert events[0]["event"] == "change" and events[0]["paths"] == [str(lib_rs)], events[0]
    assert len(events[0]["kinds"]) == 1
    assert kinds(events).count("build_started") == 1
    assert watch.interrupt() == 130


def test_build_output_and_editor_files_never_start_a_build(watch: WatchProcess, workspace: Path, lib_rs: Path) -> None:
    (workspace / "target" / "stray").mkdir(parents=True, exist_ok=True)
    (workspace / "target" / "stray" / "x.rs").write_text("fn f() {}")
    (lib_rs.parent.parent / "target").mkdir(exist_ok=True)
    (lib_rs.parent.parent / "target" / "y.rs").write_text("fn f() {}")
    for name in (".lib.rs.swp", "lib.rs~", "4913", ".#lib.rs"):
        (lib_rs.parent / name).write_text("noise")
    for name in (".lib.rs.swp", "lib.rs~", "4913", ".#lib.rs"):
        (lib_rs.parent / name).unlink()
    # Events arrive in order: had any of the above counted, a change would come before this save's.
    save(lib_rs, add_plugin_source(3))
    events = watch.until_result(6)
    assert events[0] == {"event": "change", "paths": [str(lib_rs)], "kinds": ["modified"]}
    assert kinds(events).count("build_started") == 1
    assert watch.interrupt() == 130


def test_a_file_pulled_in_with_include_str_is_watched(workspace: Path, lib_rs: Path) -> None:
    words = workspace / "words.txt"
    words.write_text("four")
    lib_rs.write_text(
        "use wasmforge_pdk::plugin_fn;\n\n#[plugin_fn]\npub fn words() -> u32 {\n"
        '    include_str!("../../../words.txt").len() as u32\n}\n'
    )
    process = WatchProcess(workspace, "--json", "--call", "words")
    try:
        process.until_result(4)
        words.write_text("seventeen letters")
        events = process.until_result(17)
        assert events[0]["event"] == "change" and events[0]["paths"] == [str(words)]
        assert process.interrupt() == 130
    finally:
        process.close()
        words.unlink()


def test_text_output_is_one_line_per_cycle(workspace: Path, lib_rs: Path) -> None:
    process = WatchProcess(workspace, "--call", "add 1 2", "--poll", "--debounce", "20")
    try:
        first = process.next_line()
        assert re.fullmatch(
            r"\[\d\d:\d\d:\d\d\] watched-plugin \(debug\): built in \d+\.\d\d s, [\d.]+ KiB, "
            r"loaded in [\d.]+ ms as v1, add 1 2 -> 3; start to result \d+\.\d\d s", first
        ), first
        assert "(polling); Ctrl-C stops" in "".join(process.stderr)
        save(lib_rs, add_plugin_source(1).replace("one + two", "one + two +"))
        broken = process.next_line()
        assert re.fullmatch(
            r"\[\d\d:\d\d:\d\d\] crates/watched-plugin/src/lib\.rs: build failed in \d+\.\d\d s: "
            r"error: .+ at crates/watched-plugin/src/lib\.rs:\d+:\d+, still serving v1; save to result \d+\.\d\d s", broken
        ), broken
        save(lib_rs, add_plugin_source(1))
        fixed = process.next_line()
        assert re.fullmatch(
            r"\[\d\d:\d\d:\d\d\] crates/watched-plugin/src/lib\.rs: built in \d+\.\d\d s, [\d.]+ KiB \([+-][\d.]+ K?i?B\), "
            r"reloaded in [\d.]+ ms as v2, add 1 2 -> 4; save to result \d+\.\d\d s", fixed
        ), fixed
        assert process.interrupt() == 130
        assert "error[" in "".join(process.stderr) or "error:" in "".join(process.stderr)  # cargo's own report
        assert "".join(process.stderr).rstrip().endswith("stopped watching")
    finally:
        process.close()


def test_ctrl_c_during_a_build_leaves_no_cargo_behind(watch: WatchProcess, workspace: Path) -> None:
    macro = workspace / "crates" / "watched-macro" / "src" / "lib.rs"
    source = macro.read_text()
    try:
        macro.write_text(source + "\n// touched\n")  # the macro, the pdk and the plugin all rebuild: seconds
        watch.until(lambda e: e["event"] == "build_started")
        compiling = poll_until(lambda: [p for p in build_processes_in(workspace) if p.endswith("rustc")], timeout=60)
        assert compiling, "rustc never started"
        assert watch.interrupt(timeout=30) == 130
        assert build_processes_in(workspace) == []  # cargo and its rustc: the whole process group
    finally:
        macro.write_text(source)


def test_check_call_failure_keeps_the_old_version(workspace: Path, lib_rs: Path) -> None:
    process = WatchProcess(workspace, "--json", "--call", "add 1 2")
    try:
        process.until_result(3)
        save(lib_rs, "use wasmforge_pdk::plugin_fn;\n\n#[plugin_fn]\npub fn sub(one: i32, two: i32) -> i32 {\n    one - two\n}\n")
        events = process.until(lambda e: e["event"] == "kept_old_version")
        assert kinds(events)[-2:] == ["call_result", "kept_old_version"]
        assert events[-2]["ok"] is False and "has no function 'add'; its functions: sub" in events[-2]["error"]
        assert events[-1]["stage"] == "check" and events[-1]["version"] == 1
        assert process.interrupt() == 130
    finally:
        process.close()


def test_every_call_runs_in_order_and_each_must_pass(workspace: Path, lib_rs: Path) -> None:
    """--call twice: both run on each new version, in order; the second failing refuses it."""
    process = WatchProcess(workspace, "--json", "--call", "add 1 2", "--call", "add 2 3")
    try:
        first = process.until_cycle_end()
        assert [(e["args"], e["value"]) for e in first if e["event"] == "call_result"] == [(["1", "2"], 3), (["2", "3"], 5)]
        save(lib_rs, add_plugin_source(0).replace("one + two + 0", 'if one == 2 { panic!("not two") } else { one + two }'))
        events = process.until_cycle_end()
        calls = [(e["args"], e["ok"]) for e in events if e["event"] == "call_result"]
        assert calls == [(["1", "2"], True), (["2", "3"], False)]
        assert kinds(events)[-2:] == ["kept_old_version", "cycle_finished"] and events[-2]["stage"] == "check"
        assert "not two" in events[-2]["error"] and events[-2]["version"] == 1
        save(lib_rs, add_plugin_source(10))
        events = process.until_cycle_end()
        assert [e["value"] for e in events if e["event"] == "call_result"] == [13, 15]
        assert process.interrupt() == 130
    finally:
        process.close()


def test_a_check_that_loops_forever_is_refused_and_the_next_save_builds(workspace: Path, lib_rs: Path) -> None:
    """Issue 11: a save that made the --call loop forever wedged watch; now it is refused after --check-timeout."""
    process = WatchProcess(workspace, "--json", "--call", "add 1 2", "--check-timeout", "1.5")
    try:
        process.until_result(3)
        save(lib_rs, add_plugin_source(0).replace("one + two + 0", "let mut n = one; while n != 0 { n += 0 } n + two"))
        events = process.until_cycle_end()
        failure = events[-2]
        assert failure == {
            "event": "kept_old_version", "stage": "check", "version": 1,
            "error": "add() did not return within 1.5 s, the time limit for checks (check_timeout)",
        }
        save(lib_rs, add_plugin_source(20))
        events = process.until_result(23)
        assert [e["version"] for e in events if e["event"] == "reloaded"] == [2]
        assert process.interrupt() == 130
    finally:
        process.close()


def test_exec_runs_after_each_good_swap_without_holding_up_the_next_build(workspace: Path, lib_rs: Path) -> None:
    """A long --exec is running when the next save comes: the build goes ahead, and when the new version
    is live the old run is stopped and a new one starts. A failed build leaves the running one alone."""
    log = workspace / "exec.log"
    log.unlink(missing_ok=True)
    command = 'echo "v$WASMFORGE_PLUGIN_VERSION $WASMFORGE_PLUGIN" >> exec.log; sleep 3600'
    process = WatchProcess(workspace, "--json", "--call", "add 1 2", "--exec", command)
    try:
        first = process.until_result(3)
        started = process.next()
        assert started == {"event": "exec_started", "command": command, "version": 1}
        assert poll_until(lambda: log.exists() and log.read_text().count("\n") == 1, TIMEOUT)
        save(lib_rs, add_plugin_source(1))
        events = process.until(lambda e: e["event"] == "exec_started")
        assert kinds(events) == ["change", "build_started", "build_finished", "reloaded", "call_result",
                                 "cycle_finished", "exec_finished", "exec_started"]
        stopped = events[-2]
        assert (stopped["version"], stopped["ok"], stopped["stopped"]) == (1, False, True)
        assert events[-1]["version"] == 2
        save(lib_rs, add_plugin_source(1).replace("one + two", "one + two +"))
        events = process.until_cycle_end()
        assert "exec_finished" not in kinds(events)  # v2's run goes on: v2 still serves
        artifact = next(e for e in first if e["event"] == "build_finished")["artifact"]
        assert poll_until(lambda: log.read_text().splitlines() == [f"v1 {artifact}", f"v2 {artifact}"], TIMEOUT), log.read_text()
        assert process.interrupt() == 130
        assert poll_until(lambda: not _processes_named("sleep", workspace), 30)  # stopping watch stops it
    finally:
        process.close()
        log.unlink(missing_ok=True)


def test_exec_result_is_on_the_cycles_line(workspace: Path, lib_rs: Path) -> None:
    process = WatchProcess(workspace, "--call", "add 1 2", "--exec", 'test "$WASMFORGE_PLUGIN_VERSION" = 1')
    try:
        first = process.next_line()
        assert re.search(r", add 1 2 -> 3, exec ok in \d+\.\d\d s; start to result \d+\.\d\d s$", first), first
        save(lib_rs, add_plugin_source(2))
        second = process.next_line()
        assert re.search(r", add 1 2 -> 5, exec failed \(exit 1\) in \d+\.\d\d s; save to result [\d.]+ s$", second), second
        assert process.interrupt() == 130
    finally:
        process.close()


def test_text_output_shows_cargos_warnings(workspace: Path, lib_rs: Path) -> None:
    process = WatchProcess(workspace, "--call", "add 1 2")
    try:
        process.next_line()
        save(lib_rs, add_plugin_source(1) + "\nfn never_called() {}\n")
        line = process.next_line()
        assert " with 1 warning, " in line and line.endswith(" s") and "add 1 2 -> 4" in line, line
        shown = "".join(process.stderr)
        assert "warning: function `never_called` is never used" in shown and "generated 1 warning" not in shown
        assert process.interrupt() == 130
    finally:
        process.close()


def test_clear_clears_the_terminal_before_each_cycle(workspace: Path, lib_rs: Path) -> None:
    """cargo watch -c: on a terminal, the screen is cleared when a save starts a cycle."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "wasmforge", "watch", "--clear", "--call", "add 1 2"], cwd=workspace,
                               env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    received = bytearray()

    def read_until(text: bytes) -> bool:
        while text not in received:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            received.extend(chunk)
        return True

    reader_result: list[bool] = []
    try:
        reader = threading.Thread(target=lambda: reader_result.append(read_until(b"add 1 2 -> 3")), daemon=True)
        reader.start()
        reader.join(TIMEOUT)
        assert reader_result == [True], received
        assert b"\033[2J" not in received  # nothing to clear before the first cycle
        save(lib_rs, add_plugin_source(5))
        reader = threading.Thread(target=lambda: reader_result.append(read_until(b"add 1 2 -> 8")), daemon=True)
        reader.start()
        reader.join(TIMEOUT)
        assert reader_result == [True, True], received
        assert received.index(b"\033[H\033[2J\033[3J") < received.index(b"add 1 2 -> 8")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        os.close(leader)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--debounce", "soon"], ["argument --debounce: expected a whole number of milliseconds, got 'soon'"]),
        (["--call", ""], ["--call needs a function name"]),
        (["--call", "greet 'unclosed"], ["--call \"greet 'unclosed\"", "No closing quotation"]),
        (["-p", "nope"], ["'nope' is not a plugin crate"]),
        (["--timeout", "soon"], ["argument --timeout: 'soon' is not a number of seconds"]),
        (["--memory-limit", "lots"], ["'lots' is not a size"]),
        (["--check-timeout", "0"], ["argument --check-timeout: '0' must be more than 0"]),
        (["--exec", "a", "--exec", "b"], ["give --exec once", "--exec 'cmd1 && cmd2'"]),
        (["--clear", "--json"], ["--clear clears the screen", "use one"]),
        (["--exec", " "], ["--exec needs a command"]),
        (["--check-timeout", "inf"], ["argument --check-timeout: 'inf' is more than a year"]),
    ],
)
def test_bad_watch_arguments_are_one_line_and_exit_2(workspace: Path, args: list, fragments: list) -> None:
    assert_one_line_error(run_cli("watch", *args, cwd=workspace, timeout=120), 2, *fragments)


def test_watch_outside_a_workspace_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("watch", cwd=tmp_path), 2, "not inside a wasmforge workspace")


def test_watch_without_a_toolchain_exits_3_at_once(workspace: Path) -> None:
    result = run_cli("watch", cwd=workspace, env={"WASMFORGE_CARGO": "/nonexistent/cargo"}, timeout=120)
    assert_one_line_error(result, 3, "cargo not found at /nonexistent/cargo")


def _rest(process: WatchProcess) -> list[str]:
    lines = []
    while True:
        try:
            line = process.lines.get(timeout=TIMEOUT)
        except Exception:
            return lines
        if line is None:
            return lines
        lines.append(line)


def _processes_named(program: str, cwd: Path) -> list[str]:
    """Processes running ``program`` with ``cwd`` as their working directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            where = os.readlink(entry / "cwd")
        except OSError:
            continue
        if os.path.basename(argv[0].decode(errors="replace")) == program and where == str(cwd):
            found.append(entry.name)
    return found
