"""What `wasmforge watch` prints for a cycle's events: the printer alone, fed events, writing to strings."""

from __future__ import annotations

import io
import re
from pathlib import Path

from test_build import CARGO_WARNINGS
from wasmforge.cli.watch_output import WatchPrinter
from wasmforge.cli.output import Output
from wasmforge.events import (
    BuildFinished,
    BuildStarted,
    CallResult,
    Changed,
    CycleFinished,
    Event,
    ExecFinished,
    ExecStarted,
    KeptOldVersion,
    Reloaded,
    Unchanged,
)

ROOT = Path("/ws")
LIB_RS = ROOT / "src" / "lib.rs"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def printer(*, quiet: bool = False, verbose: bool = False, clear: bool = False, exec_command: str = "") -> WatchPrinter:
    out = Output(quiet=quiet, stdout=Terminal(), stderr=io.StringIO())
    return WatchPrinter(out, ROOT, as_json=False, verbose=verbose, clear=clear, exec_command=exec_command or None)


def stdout(shown: WatchPrinter) -> list[str]:
    """The lines printed, without their [HH:MM:SS] stamps."""
    text = shown.out.stdout.getvalue()  # type: ignore[attr-defined]
    return [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in text.splitlines()]


def stderr(shown: WatchPrinter) -> str:
    return shown.out.stderr.getvalue()  # type: ignore[attr-defined]


def feed(shown: WatchPrinter, *events: Event) -> None:
    for event in events:
        shown(event)


def good_cycle(version: int, *, warnings: int = 0, diagnostics: str = "", seconds: float = 0.42) -> list[Event]:
    return [
        Changed(paths=(LIB_RS,), kinds=("modified",)),
        BuildStarted(crate="demo-plugin", profile="debug", reason="change"),
        BuildFinished(ok=True, seconds=0.3, diagnostics=diagnostics, warnings=warnings, size=2048),
        Reloaded(version=version, path=None, size=2048, size_change=0, seconds=0.0031),
        CallResult(function="add", args=("1", "2"), ok=True, value=3),
        CallResult(function="greet", args=("a b",), ok=True, value="hi a b"),
        CycleFinished(outcome="reloaded", version=version, seconds=seconds),
    ]


def test_a_cycle_is_one_line_ending_with_the_time_from_the_save() -> None:
    shown = printer()
    feed(shown, *good_cycle(2))
    assert stdout(shown) == [
        "src/lib.rs: built in 0.30 s, 2.0 KiB (+0 B), reloaded in 3.1 ms as v2, add 1 2 -> 3, "
        "greet 'a b' -> \"hi a b\"; save to result 0.42 s"
    ]


def test_the_first_build_is_timed_from_the_start() -> None:
    shown = printer()
    feed(shown, BuildStarted(crate="demo-plugin", profile="debug", reason="start"),
         BuildFinished(ok=True, seconds=0.5, diagnostics="", size=10),
         Reloaded(version=1, path=None, size=10, size_change=None, seconds=0.002),
         CycleFinished(outcome="reloaded", version=1, seconds=0.61))
    assert stdout(shown) == ["demo-plugin (debug): built in 0.50 s, 10 B, loaded in 2.0 ms as v1; start to result 0.61 s"]


def test_a_failed_check_names_the_check_that_failed() -> None:
    shown = printer()
    feed(shown, *good_cycle(2)[:3],
         CallResult(function="add", args=("1", "2"), ok=True, value=3),
         CallResult(function="mul", args=("2", "3"), ok=False, error="mul() did not return within 5 s"),
         KeptOldVersion(stage="check", error="mul() did not return within 5 s", version=1),
         CycleFinished(outcome="kept_old_version", version=1, seconds=5.4))
    assert stdout(shown) == [
        "src/lib.rs: built in 0.30 s, add 1 2 -> 3, mul 2 3 failed on the new version: mul() did not return "
        "within 5 s, still serving v1; save to result 5.40 s"
    ]


def test_warnings_are_counted_on_the_line_and_the_first_few_shown() -> None:
    shown = printer()
    four = CARGO_WARNINGS + CARGO_WARNINGS.split("\n", 1)[0] + "\n"  # a fourth: the manifest warning again
    feed(shown, *good_cycle(2, warnings=4, diagnostics=four))
    assert stdout(shown)[0].startswith("src/lib.rs: built in 0.30 s with 4 warnings, ")
    text = stderr(shown)
    assert text.count("warning: ") == 3 and "= note: `#[warn(unused_variables)]` on by default" in text
    assert "generated 2 warnings" not in text  # cargo's summary is no warning
    assert text.endswith("... and 1 more warning (-v shows all)\n")
    everything = printer(verbose=True)
    feed(everything, *good_cycle(2, warnings=4, diagnostics=four))
    assert stderr(everything).count("warning: ") == 4 and "more warning" not in stderr(everything)
    quiet = printer(quiet=True)
    feed(quiet, *good_cycle(2, warnings=4, diagnostics=four))
    assert stderr(quiet) == "" and "with 4 warnings" in stdout(quiet)[0]


def test_one_warning_is_singular() -> None:
    shown = printer()
    feed(shown, *good_cycle(2, warnings=1, diagnostics="warning: unused variable: `x`\n\n"))
    assert " with 1 warning, " in stdout(shown)[0]
    assert stderr(shown) == "warning: unused variable: `x`\n\n"


def test_the_exec_result_ends_its_cycles_line() -> None:
    shown = printer(exec_command="pytest -q")
    feed(shown, *good_cycle(2))
    assert stdout(shown) == []  # the line waits for the command
    feed(shown, ExecStarted(command="pytest -q", version=2),
         ExecFinished(command="pytest -q", version=2, ok=False, exit_code=1, seconds=1.25))
    (line,) = stdout(shown)
    assert line.endswith('greet \'a b\' -> "hi a b", exec failed (exit 1) in 1.25 s; save to result 0.42 s')


def test_a_new_cycle_does_not_wait_for_the_exec_of_the_last() -> None:
    shown = printer(exec_command="sleep 60")
    feed(shown, *good_cycle(2), ExecStarted(command="sleep 60", version=2))
    feed(shown, *good_cycle(3, seconds=0.5))
    feed(shown, ExecFinished(command="sleep 60", version=2, ok=False, exit_code=-15, seconds=3.0, stopped=True),
         ExecStarted(command="sleep 60", version=3),
         ExecFinished(command="sleep 60", version=3, ok=True, exit_code=0, seconds=0.01))
    assert [line.split(" -> ")[-1] for line in stdout(shown)] == [
        '"hi a b", exec running; save to result 0.42 s',
        "v2: exec stopped after 3.00 s (a newer version went live)",
        '"hi a b", exec ok in 0.01 s; save to result 0.50 s',
    ]


def test_a_failed_cycle_does_not_wait_for_the_exec() -> None:
    shown = printer(exec_command="true")
    feed(shown, Changed(paths=(LIB_RS,), kinds=("modified",)),
         BuildFinished(ok=False, seconds=0.2, diagnostics="error: x\n", error="build failed: error: x"),
         KeptOldVersion(stage="build", error="build failed: error: x", version=1),
         CycleFinished(outcome="kept_old_version", version=1, seconds=0.3))
    assert stdout(shown) == ["src/lib.rs: build failed in 0.20 s: error: x, still serving v1; save to result 0.30 s"]


def test_clear_clears_the_terminal_when_a_cycle_starts() -> None:
    shown = printer(clear=True)
    feed(shown, *good_cycle(2), *good_cycle(3))
    text = shown.out.stdout.getvalue()  # type: ignore[attr-defined]
    assert text.count("\033[H\033[2J\033[3J") == 2 and text.startswith("\033[H\033[2J\033[3J[")
    assert text.index("as v3") > text.rindex("\033[2J") > text.index("as v2")
    piped = WatchPrinter(Output(stdout=io.StringIO(), stderr=io.StringIO()), ROOT, as_json=False, clear=True)
    feed(piped, *good_cycle(2))
    assert "\033" not in piped.out.stdout.getvalue()  # type: ignore[attr-defined]  # not a terminal: nothing to clear


def test_a_rebuild_that_ends_a_failure_with_the_serving_bytes_says_so() -> None:
    shown = printer()
    for recovered in (True, False):
        feed(shown, Changed(paths=(LIB_RS,), kinds=("modified",)),
             BuildFinished(ok=True, seconds=0.3, diagnostics="", size=2048),
             Unchanged(version=2, size=2048, recovered=recovered),
             CycleFinished(outcome="unchanged", version=2, seconds=0.4))
    assert stdout(shown) == [
        "src/lib.rs: built in 0.30 s, 2.0 KiB, identical to v2: recovered, not reloaded; save to result 0.40 s",
        "src/lib.rs: built in 0.30 s, 2.0 KiB, identical: not reloaded (still v2); save to result 0.40 s",
    ]


def test_bytes_have_one_json_shape_in_call_and_watch() -> None:
    """A check's bytes value is `"value": "<base64>", "encoding": "base64"`, as `call --json` gives its result."""
    event = CallResult(function="echo", args=("x",), ok=True, value=b"\x00\xff", seconds=0.0)
    assert event.to_json() == {"event": "call_result", "function": "echo", "args": ["x"], "ok": True,
                               "value": "AP8=", "encoding": "base64", "error": None, "seconds": 0.0}
    assert "encoding" not in CallResult(function="add", args=(), ok=True, value=3).to_json()


def test_with_several_plugins_each_line_names_its_plugin() -> None:
    out = Output(quiet=False, stdout=Terminal(), stderr=io.StringIO())
    shown = WatchPrinter(out, ROOT, as_json=False, plugin="greeter")
    feed(shown, BuildStarted(crate="greeter", profile="debug", reason="start"),
         BuildFinished(ok=True, seconds=0.5, diagnostics="", size=10),
         Reloaded(version=1, path=None, size=10, size_change=None, seconds=0.002),
         CycleFinished(outcome="reloaded", version=1, seconds=0.61), *good_cycle(2)[:4], good_cycle(2)[-1])
    assert stdout(shown) == [
        "greeter (debug): built in 0.50 s, 10 B, loaded in 2.0 ms as v1; start to result 0.61 s",
        "greeter: src/lib.rs: built in 0.30 s, 2.0 KiB (+0 B), reloaded in 3.1 ms as v2; save to result 0.42 s",
    ]
    as_json = WatchPrinter(Output(quiet=False, stdout=io.StringIO(), stderr=io.StringIO()), ROOT, as_json=True,
                           plugin="greeter")
    as_json(CycleFinished(outcome="reloaded", version=2, seconds=0.4))
    assert as_json.out.stdout.getvalue().startswith('{"plugin": "greeter", "event": "cycle_finished"')  # type: ignore[attr-defined]


def test_call_names_its_plugin_with_a_colon() -> None:
    from wasmforge.cli.watch_output import CliCall
    from wasmforge.errors import UsageError

    call = CliCall.parse("greeter:add 1 2")
    assert (call.plugin, call.function, call.args) == ("greeter", "add", ("1", "2"))
    assert CliCall.parse("add 1 2").plugin is None
    import pytest

    with pytest.raises(UsageError, match="name the function after the crate"):
        CliCall.parse("greeter: 1 2")
