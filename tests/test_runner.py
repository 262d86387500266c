"""The runner crate calls the plugin's functions natively through the same
generated glue as the .wasm: native and wasm results must agree."""

from __future__ import annotations

import json
import subprocess
import pytest

import wasmforge
from wasmforge.abi.arguments import parse_cli_argument
from wasmforge.workspace.toolchain import find_toolchain, offline_config_args

CASES = [
    ("add", ["1", "2"]),
    ("add", ["-5", "7"]),
    ("length", ["supercalifragilisticexpialidocious"]),
    ("length", ["héllo"]),
    ("greet", ["big world"]),
    ("greet", ["42"]),
    ("stats", ["hello big world"]),
    ("stats", [""]),
    ("parse_port", ["8080"]),
    ("preprocess", ["hi :crab: and :rocket:"]),
]
ERRORS = [("parse_port", ["0"]), ("parse_port", ["http"])]


@pytest.fixture(scope="module")
def runner(demo):
    toolchain = find_toolchain()
    argv = [str(toolchain.cargo), "run", "-q", "-p", "demo-runner"]
    if toolchain.is_debian:
        argv += offline_config_args()
    built = subprocess.run([*argv, "--"], cwd=demo.root, env=toolchain.cargo_env(), capture_output=True,
                           text=True, timeout=900)
    assert built.returncode == 0, built.stderr

    def run(*words: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([*argv, "--", *words], cwd=demo.root, env=toolchain.cargo_env(),
                              capture_output=True, text=True, timeout=300)
    return run


@pytest.mark.cargo
@pytest.mark.parametrize("function, args", CASES)
def test_native_and_wasm_agree(runner, demo_plugin, function: str, args: list) -> None:
    native = runner(function, *args)
    assert native.returncode == 0, native.stderr
    signature = demo_plugin.exports[function]
    wasm_value = demo_plugin.call(function, *[parse_cli_argument(signature, i, a) for i, a in enumerate(args)])
    native_text = native.stdout.rstrip("\n")
    native_value = native_text if signature.output == "str" else json.loads(native_text)
    assert native_value == wasm_value


@pytest.mark.cargo
@pytest.mark.parametrize("function, args", ERRORS)
def test_native_and_wasm_fail_alike(runner, demo_plugin, function: str, args: list) -> None:
    native = runner(function, *args)
    assert native.returncode == 1
    with pytest.raises(wasmforge.PluginError) as caught:
        demo_plugin.call(function, *args)
    assert native.stderr.strip() == f"demo-runner: {caught.value}"


@pytest.mark.cargo
def test_runner_lists_the_same_signatures(runner, demo_plugin) -> None:
    listing = runner()
    assert listing.stdout.splitlines() == [str(signature) for signature in demo_plugin.exports.values()]


@pytest.mark.cargo
def test_call_native_runs_the_same_call_through_the_runner(demo) -> None:
    from helpers import assert_one_line_error, run_cli

    assert run_cli("call", "--native", "add", "1", "2", cwd=demo.root).stdout == "3\n"
    assert run_cli("call", "--native", "greet", "42", cwd=demo.root).stdout == "Hello, 42!\n"
    listed = run_cli("call", "--native", "--list", cwd=demo.root)
    assert listed.stdout.splitlines()[0] == "add(one: i32, two: i32) -> i32"
    failed = run_cli("call", "--native", "parse_port", "0", cwd=demo.root)
    assert (failed.returncode, failed.stderr.strip()) == (1, "demo-runner: port 0 is not a usable port")
    assert_one_line_error(run_cli("call", "--native", cwd=demo.root), 2, "name the function to call")
    assert_one_line_error(run_cli("call", "--native", "--plugin", "x.wasm", "add", cwd=demo.root), 2,
                          "--native runs the workspace's runner crate")
