"""Wrong and unusual input, command by command: one line, the documented exit code, nothing lost.

Each case here was found by running the commands the way a new user does.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from helpers import assert_one_line_error, copy_workspace, run_cli
from wasmforge._text import first_line
from wasmforge.errors import PluginLoadError, UsageError


# ---- limits and integrity ---------------------------------------------------------------------


@pytest.mark.cargo
@pytest.mark.parametrize("timeout", ["inf", "1e308", "-inf"])
def test_a_timeout_too_long_to_enforce_is_a_usage_error(demo, timeout) -> None:
    result = run_cli("call", "--plugin", str(demo.wasm), f"--timeout={timeout}", "add", "1", "2")
    assert_one_line_error(result, 2, "timeout", "leave it unset for no time limit" if timeout != "-inf" else "more than 0")


@pytest.mark.cargo
def test_an_infinite_timeout_in_wasmforge_toml_is_a_config_error(demo, tmp_path: Path) -> None:
    root = copy_workspace(demo.root, tmp_path / "demo")
    (root / "wasmforge.toml").write_text("[limits]\ntimeout = inf\n", encoding="utf-8")
    for command in (["call", "add", "1", "2"], ["watch"]):
        assert_one_line_error(run_cli(*command, cwd=root, timeout=120), 2, "timeout must be a positive number")
    with pytest.raises(wasmforge.OptionError, match="up to 31536000"):
        wasmforge.Limits(timeout=math.inf)


@pytest.mark.cargo
def test_fuel_used_up_while_starting_says_so(demo) -> None:
    with pytest.raises(PluginLoadError, match=r"used up its fuel budget of 1 while starting \(in __wf_init\); raise"):
        wasmforge.load(demo.wasm, fuel=1)
    assert_one_line_error(run_cli("call", "--plugin", str(demo.wasm), "--fuel", "1", "add", "1", "2"), 1,
                          "used up its fuel budget of 1 while starting")


@pytest.mark.cargo
def test_a_sha256_that_is_not_one_is_a_usage_error(demo) -> None:
    with pytest.raises(UsageError, match="sha256 must be 64 hexadecimal digits"):
        wasmforge.load(demo.wasm, sha256="abc")
    assert_one_line_error(run_cli("call", "--plugin", str(demo.wasm), "--sha256", "abc", "add", "1", "2"), 2,
                          "64 hexadecimal digits")


def test_trap_messages_show_the_reason_not_the_backtrace_header() -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, '(module (func (export "f") unreachable))')
    with pytest.raises(wasmtime.Trap) as caught:
        wasmtime.Instance(store, module, []).exports(store)["f"](store)
    assert "backtrace" in str(caught.value)  # what wasmtime puts first
    assert first_line(caught.value) == "wasm trap: wasm `unreachable` instruction executed"


# ---- global flags, paths, flag combinations ----------------------------------------------------------


@pytest.mark.cargo
def test_global_flags_work_after_the_command_too(demo) -> None:
    assert run_cli("call", "-C", str(demo.root), "add", "1", "2").stdout == "3\n"
    quiet = run_cli("build", "-q", cwd=demo.root)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    verbose = run_cli("call", "-v", "add", "1", "2", cwd=demo.root)
    assert verbose.stdout == "3\n" and "Finished" in verbose.stderr


def test_minus_c_names_a_file_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert_one_line_error(run_cli("-C", str(tmp_path / "file"), "build"), 2, "not a directory")
    assert_one_line_error(run_cli("-C", str(tmp_path / "nowhere"), "build"), 2, "no such directory")


@pytest.mark.parametrize("args, fragment", [
    (["call", "--plugin", "missing.wasm", "add"], "no plugin at missing.wasm: no such file"),
    (["call", "--plugin", ".", "add"], "is a directory; name the .wasm file in it"),
    (["inspect", "missing.wasm"], "no plugin at missing.wasm: no such file"),
    (["chain", "--dir", "missing", "preprocess", "--input", "x"], "--dir missing: no such directory"),
])
def test_a_path_that_is_not_there_is_a_usage_error(tmp_path: Path, args, fragment) -> None:
    assert_one_line_error(run_cli(*args, cwd=tmp_path), 2, fragment)


@pytest.mark.cargo
@pytest.mark.parametrize("extra, flag", [(["-p", "demo-plugin"], "-p"), (["--release"], "--release")])
def test_plugin_path_and_workspace_choices_do_not_mix(demo, extra, flag) -> None:
    result = run_cli("call", "--plugin", str(demo.wasm), *extra, "add", "1", "2", cwd=demo.root)
    assert_one_line_error(result, 2, f"{flag} chooses what to build")


@pytest.mark.cargo
@pytest.mark.parametrize("flag", [["--json"], ["--sha256", "0" * 64], ["--timeout", "1"], ["--fuel", "9"]])
def test_native_calls_refuse_flags_that_cannot_apply(demo, flag) -> None:
    result = run_cli("call", "--native", *flag, "add", "1", "2", cwd=demo.root)
    assert_one_line_error(result, 2, f"{flag[0]} cannot apply", "drop --native")


def test_hints_outside_a_workspace_fit_the_command(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("call", "add", cwd=tmp_path), 2, "--plugin PATH")
    inspect = assert_one_line_error(run_cli("inspect", cwd=tmp_path), 2, "wasmforge inspect PATH")
    assert "--plugin" not in inspect
    assert_one_line_error(run_cli("chain", "preprocess", "--input", "x", cwd=tmp_path), 2, "--dir DIR")


@pytest.mark.cargo
def test_a_config_error_is_not_followed_by_an_unrelated_hint(demo, tmp_path: Path) -> None:
    root = copy_workspace(demo.root, tmp_path / "demo")
    (root / "wasmforge.toml").write_text("[build]\nprofil = 'debug'\n", encoding="utf-8")
    line = assert_one_line_error(run_cli("call", "add", "1", "2", cwd=root), 2, "unknown setting [build] profil")
    assert "--plugin" not in line


@pytest.mark.cargo
def test_config_type_errors_use_toml_words(demo, tmp_path: Path) -> None:
    root = copy_workspace(demo.root, tmp_path / "demo")
    (root / "wasmforge.toml").write_text("[watch]\ndebounce_ms = true\n", encoding="utf-8")
    assert_one_line_error(run_cli("build", cwd=root), 2, "[watch] debounce_ms must be a whole number, got true")


@pytest.mark.cargo
def test_a_plugin_crate_the_workspace_lacks_stops_every_command_at_once(demo, tmp_path: Path) -> None:
    root = copy_workspace(demo.root, tmp_path / "demo")
    (root / "wasmforge.toml").write_text('[plugin]\ncrates = ["nosuch-plugin"]\n', encoding="utf-8")
    for command in (["build"], ["watch"], ["test"], ["test", "--python-only"], ["call", "add"]):
        assert_one_line_error(run_cli(*command, cwd=root, timeout=120), 2,
                              "wasmforge.toml names plugin crate 'nosuch-plugin', which is not in the workspace")


@pytest.mark.cargo
def test_a_pytest_filter_that_selects_nothing_fails(demo, tmp_path: Path) -> None:
    root = copy_workspace(demo.root, tmp_path / "demo")
    result = run_cli("test", "--python-only", "--", "-k", "no_test_has_this_name", cwd=root)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "pytest: FAILED, 0 passed, 0 failed, no tests matched -k no_test_has_this_name"


def test_chain_without_a_function_names_only_what_the_user_can_give(tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("chain", cwd=tmp_path), 2, "required: FUNC")
    assert "extra" not in line


# ---- values that JSON cannot hold, and floats ------------------------------------------------------------


@pytest.mark.cargo
def test_json_output_is_strict_even_for_nan_and_infinity(boundary) -> None:
    for function, argument, expected in (("hypot", "nan", "NaN"), ("hypot", "INF", "Infinity"),
                                         ("half", "-inf", "-Infinity"), ("hypot", "1.5", 2.5)):
        args = [argument, "2"] if function == "hypot" else [argument]
        result = run_cli("-q", "call", "--plugin", str(boundary.wasm), "--json", function, "--", *args)
        assert result.returncode == 0, result.stderr
        parsed = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"non-standard JSON: {name}"))
        if expected == 2.5:
            assert parsed["result"] == pytest.approx(math.hypot(1.5, 2))
        else:
            assert parsed["result"] == expected


@pytest.mark.cargo
def test_a_float_literal_too_large_for_its_type_is_refused(boundary) -> None:
    # -q: the boundary plugin imports host functions the CLI cannot give, which is otherwise a warning line.
    call = ["-q", "call", "--plugin", str(boundary.wasm)]
    assert_one_line_error(run_cli(*call, "hypot", "1e400", "1"), 2, "a: 1e400 is too large for f64",
                          "write inf for infinity")
    assert_one_line_error(run_cli(*call, "half", "1e39"), 2, "x: 1e39 is too large for f32")
    assert run_cli(*call, "half", "3e38").returncode == 0


@pytest.mark.cargo
def test_none_prints_as_null_and_unit_prints_nothing(boundary) -> None:
    none = run_cli("-q", "call", "--plugin", str(boundary.wasm), "first_or", "[]", "null")
    assert (none.returncode, none.stdout) == (0, "null\n")
    unit = run_cli("-q", "call", "--plugin", str(boundary.wasm), "nothing")
    assert (unit.returncode, unit.stdout) == (0, "")


# ---- toolchain overrides --------------------------------------------------------------------------------


@pytest.mark.cargo
@pytest.mark.parametrize("cargo, fragment", [
    ("/nonexistent/cargo", "cargo not found at /nonexistent/cargo"),
    (shutil.which("true") or "/bin/true", "does not answer `--version` like cargo"),
])
def test_a_bad_cargo_override_is_named_with_its_fix(demo, cargo, fragment) -> None:
    result = run_cli("build", cwd=demo.root, env={"WASMFORGE_CARGO": cargo})
    line = assert_one_line_error(result, 3, fragment, "point WASMFORGE_CARGO and WASMFORGE_RUSTC")
    assert "rustup target add" not in line


@pytest.mark.cargo
def test_inspect_release_builds_the_release_profile(demo, tmp_path: Path) -> None:
    result = run_cli("inspect", "--release", "--json", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    assert "/release/" in json.loads(result.stdout)["file"]
    assert_one_line_error(run_cli("inspect", str(demo.wasm), "--release", cwd=demo.root), 2, "--release chooses what to build")


def test_a_workspace_without_plugin_crates_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/tool"]\n', encoding="utf-8")
    (tmp_path / "wasmforge.toml").write_text("", encoding="utf-8")
    assert_one_line_error(run_cli("build", cwd=tmp_path), 2, "no workspace crate is a cdylib",
                          "`wasmforge add NAME`", '[plugin] crates = ["NAME"]')


# ---- --json on failure: the error as JSON on stdout too -----------------------------------------------------


def _failed_json(result, exit_code: int) -> dict:
    """A failing --json command: the exit code, one line on stderr, and `{"ok": false, "error": {...}}` on stdout."""
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "error"} and report["ok"] is False
    return report["error"]


@pytest.mark.cargo
def test_call_json_reports_a_panic_with_where_it_happened(boundary) -> None:
    from test_boundary import line_of

    line, column = line_of("PANIC-LINE")
    error = _failed_json(run_cli("-q", "call", "--plugin", str(boundary.wasm), "--json", "explode", "3"), 1)
    assert error == {
        "type": "PluginPanic",
        "message": f"explode() in boundary_plugin.wasm panicked at crates/boundary-plugin/src/lib.rs:{line}:{column}: "
                   "exploded on 3",
        "plugin": "boundary_plugin.wasm", "function": "explode", "panic_message": "exploded on 3",
        "file": "crates/boundary-plugin/src/lib.rs", "line": line, "column": column,
    }


@pytest.mark.cargo
def test_call_json_reports_errors_returned_and_usage_errors(boundary) -> None:
    call = ["-q", "call", "--plugin", str(boundary.wasm), "--json"]
    error = _failed_json(run_cli(*call, "checked_div", "7", "0"), 1)
    assert error == {"type": "PluginError", "message": "cannot divide 7 by zero", "plugin": "boundary_plugin.wasm",
                     "function": "checked_div"}
    error = _failed_json(run_cli(*call, "nope"), 2)
    assert error["type"] == "UnknownFunctionError" and "has no function 'nope'" in error["message"]
    error = _failed_json(run_cli(*call, "add", "1"), 2)
    assert error["type"] == "ArgumentError"
    ok = run_cli(*call, "add", "1", "2")
    assert (ok.returncode, json.loads(ok.stdout)) == (0, {"ok": True, "function": "add", "result": 3})


def test_json_commands_outside_a_workspace_report_the_error_as_json(tmp_path: Path) -> None:
    for command in (["call", "add"], ["inspect"], ["chain", "f", "--input", "x"], ["test"]):
        error = _failed_json(run_cli(*command, "--json", cwd=tmp_path), 2)
        expected = "WorkspaceNotFound" if command[0] == "test" else "UsageError"  # the others say what else to do
        assert error["type"] == expected, (command, error)
        assert "not inside a wasmforge workspace" in error["message"]
