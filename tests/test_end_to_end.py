"""The whole path a newcomer takes: new, build, call from the CLI and from Python,
plus the native runner, all with real cargo and real wasmtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, assert_one_line_error, python_path, run_cli
from wasmforge.workspace.toolchain import find_toolchain, offline_config_args

SEED_WORD = "supercalifragilisticexpialidocious"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    """`wasmforge new hello` then `wasmforge build`, through the CLI."""
    base = tmp_path_factory.mktemp("e2e")
    created = run_cli("new", "hello", cwd=base)
    assert created.returncode == 0, created.stderr
    built = run_cli("build", cwd=base / "hello")
    assert built.returncode == 0, built.stderr
    return base / "hello"


@pytest.mark.cargo
def test_call_add_prints_3(fresh: Path) -> None:
    result = run_cli("call", "add", "1", "2", cwd=fresh)
    assert (result.returncode, result.stdout, result.stderr) == (0, "3\n", "")


@pytest.mark.cargo
def test_call_length_of_the_seed_word(fresh: Path) -> None:
    result = run_cli("call", "length", SEED_WORD, cwd=fresh)
    assert result.stdout == "34\n"


@pytest.mark.cargo
def test_call_with_directory_option_and_json(fresh: Path) -> None:
    result = run_cli("-C", str(fresh), "call", "--json", "greet", "you")
    assert json.loads(result.stdout) == {"ok": True, "function": "greet", "result": "Hello, you!"}


@pytest.mark.cargo
def test_text_parameters_take_the_argument_as_typed(fresh: Path) -> None:
    assert run_cli("call", "greet", "42", cwd=fresh).stdout == "Hello, 42!\n"
    assert run_cli("call", "length", "[1, 2]", cwd=fresh).stdout == "6\n"


TEMPLATE_SIGNATURES = [
    "add(one: i32, two: i32) -> i32",
    "length(s: &str) -> u32",
    "greet(name: &str) -> String",
    "stats(text: &str) -> Stats",
    "parse_port(text: &str) -> Result<u16, PortError>",
    "preprocess(markdown: String) -> String",
]
#: What `call --list` prints: the signatures, each with the #[plugin_type]s it uses indented under it.
TEMPLATE_LISTING = [
    *TEMPLATE_SIGNATURES[:4],
    "    Stats {words: u32, longest: String}",
    TEMPLATE_SIGNATURES[4],
    "    PortError {Zero | NotANumber {text: String, reason: String}}",
    TEMPLATE_SIGNATURES[5],
]


@pytest.mark.cargo
def test_call_list(fresh: Path) -> None:
    result = run_cli("call", "--list", cwd=fresh)
    assert result.stdout.splitlines() == TEMPLATE_LISTING


@pytest.mark.cargo
def test_call_with_plugin_path_outside_a_workspace(fresh: Path, tmp_path: Path) -> None:
    wasm = next(Path(os.environ["CARGO_TARGET_DIR"]).glob("wasm32-unknown-unknown/debug/hello_plugin.wasm"))
    result = run_cli("call", "--plugin", str(wasm), "add", "20", "22", cwd=tmp_path)
    assert result.stdout == "42\n"


@pytest.mark.cargo
def test_python_api_on_the_cli_built_plugin(fresh: Path) -> None:
    import wasmforge

    wasm = next(Path(os.environ["CARGO_TARGET_DIR"]).glob("wasm32-unknown-unknown/debug/hello_plugin.wasm"))
    with wasmforge.load(wasm) as plugin:
        assert plugin.add(1, 2) == 3
        assert plugin.length(SEED_WORD) == 34


@pytest.mark.cargo
@pytest.mark.parametrize(
    "args, code, fragments",
    [
        (["call", "nope"], 2, ["has no function 'nope'", "add, greet, length, parse_port, preprocess, stats"]),
        (["call", "parse_port", "0"], 1, ["parse_port() returned an error: port 0 is not a usable port"]),
        (["call", "add", "1"], 2, ["add() takes 2 arguments (one: i32, two: i32), got 1"]),
        (["call", "add", "1", "two"], 2, ["argument 2 of add (two: i32): expected an integer"]),
        (["call"], 2, ["name the function to call"]),
        (["call", "--plugin", "missing.wasm", "add"], 2, ["no plugin at missing.wasm: no such file"]),
        (["frobnicate"], 2, ["invalid choice: 'frobnicate'"]),
        (["new"], 2, ["name the workspace, e.g. `wasmforge new my-plugin`, or see --list-templates"]),
        (["new", "--bogus"], 2, ["unrecognized arguments: --bogus", "wasmforge new --help"]),
        (["-C", "/nonexistent/dir", "build"], 2, ["no such directory"]),
    ],
)
def test_bad_input_is_one_line_with_the_documented_exit_code(fresh: Path, args: list, code: int, fragments: list) -> None:
    assert_one_line_error(run_cli(*args, cwd=fresh), code, *fragments)


def test_call_outside_a_workspace_suggests_plugin(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("call", "add", "1", "2", cwd=tmp_path), 2, "--plugin PATH")


def test_non_wasm_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.wasm"
    bogus.write_text("just text")
    result = run_cli("call", "--plugin", str(bogus), "add", cwd=tmp_path)
    assert_one_line_error(result, 1, "notes.wasm is not a WebAssembly module")


@pytest.mark.cargo
def test_runner_runs_the_plugin_natively_offline(fresh: Path) -> None:
    """The runner links the plugin as an rlib and calls it through the same glue."""
    toolchain = find_toolchain()
    argv = [str(toolchain.cargo), "run", "-q", "-p", "hello-runner"]
    if toolchain.is_debian:
        argv += offline_config_args()

    def runner(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([*argv, "--", *args], cwd=fresh, env=toolchain.cargo_env(),
                              capture_output=True, text=True, timeout=600)

    assert runner("add", "1", "2").stdout == "3\n"
    assert runner("length", SEED_WORD).stdout == "34\n"
    listing = runner()
    assert listing.stdout.splitlines() == TEMPLATE_SIGNATURES
    wrong = runner("add", "1")
    assert wrong.returncode == 1 and "takes 2 argument(s), got 1" in wrong.stderr


def test_python_m_wasmforge_and_version() -> None:
    result = subprocess.run([sys.executable, "-m", "wasmforge", "--version"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": python_path(REPO)})
    assert result.stdout.startswith("wasmforge ") and result.returncode == 0
