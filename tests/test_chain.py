"""Plugin chains (the series' Part 4), inspect, and the example workspace's two plugins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import wasmforge
from helpers import REPO, assert_one_line_error, copy_workspace, python_path, run_cli

CHAPTER = "# Intro :wave:\nHello :crab:\n## Next steps\nmore\n"
PROCESSED = (
    "**Contents**\n\n- [Intro 👋](#intro-)\n  - [Next steps](#next-steps)\n\n"
    "# Intro 👋\nHello 🦀\n## Next steps\nmore\n"
)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target) -> Path:
    """A copy of example-workspace (building it must not write into the repository), built."""
    root = tmp_path_factory.mktemp("example") / "example-workspace"
    copy_workspace(REPO / "example-workspace", root)
    result = run_cli("build", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def preprocessors(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of plugins, like the series' preprocessors/ directory."""
    report = json.loads(run_cli("build", "--json", cwd=example).stdout)
    folder = tmp_path_factory.mktemp("preprocessors")
    paths = {a["crate"]: Path(a["path"]) for a in report["artifacts"]}
    shutil.copy(paths["example-plugin"], folder / "10-shortcodes.wasm")
    shutil.copy(paths["example-toc-plugin"], folder / "20-toc.wasm")
    (folder / "notes.txt").write_text("not a plugin")
    return folder


@pytest.mark.cargo
def test_load_dir_chains_in_file_name_order(preprocessors: Path) -> None:
    with wasmforge.load_dir(preprocessors) as chain:
        assert [p.name for p in chain] == ["10-shortcodes.wasm", "20-toc.wasm"]
        assert chain.call("preprocess", CHAPTER) == PROCESSED
        assert repr(chain) == "<PluginChain 10-shortcodes.wasm -> 20-toc.wasm>"


@pytest.mark.cargo
def test_chain_step_without_the_function_is_named(preprocessors: Path) -> None:
    with wasmforge.load_dir(preprocessors) as chain:
        with pytest.raises(wasmforge.UnknownFunctionError, match=r"chain step 2 \(20-toc.wasm\) has no function 'add'"):
            chain.call("add", 1)


def test_load_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(wasmforge.PluginLoadError, match="no plugins"):
        wasmforge.load_dir(tmp_path)
    with pytest.raises(wasmforge.PluginLoadError, match="is not a directory"):
        wasmforge.load_dir(tmp_path / "missing")


@pytest.mark.cargo
def test_cli_chain_reads_stdin_and_writes_stdout(preprocessors: Path, example: Path) -> None:
    import subprocess
    import sys

    from helpers import REPO as repo
    import os

    env = {**os.environ, "PYTHONPATH": python_path(repo)}
    for args, cwd in ((["--dir", str(preprocessors)], Path("/")), ([], example)):
        result = subprocess.run([sys.executable, "-m", "wasmforge", "chain", "preprocess", *args],
                                input=CHAPTER, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert (result.returncode, result.stdout) == (0, PROCESSED), result.stderr


@pytest.mark.cargo
def test_cli_chain_json_and_input_option(preprocessors: Path) -> None:
    result = run_cli("chain", "preprocess", "--dir", str(preprocessors), "--input", "hi :rocket:", "--json")
    assert json.loads(result.stdout) == {
        "ok": True, "function": "preprocess", "steps": ["10-shortcodes.wasm", "20-toc.wasm"], "result": "hi 🚀",
    }


@pytest.mark.cargo
def test_call_in_a_workspace_with_two_plugins(example: Path) -> None:
    assert run_cli("call", "add", "1", "2", cwd=example).stdout == "3\n"
    ambiguous = run_cli("call", "preprocess", "x", cwd=example)
    assert_one_line_error(ambiguous, 2, "preprocess is exported by", "-p CRATE")
    chosen = run_cli("call", "-p", "example-toc-plugin", "preprocess", "# A", cwd=example)
    assert chosen.stdout == "**Contents**\n\n- [A](#a)\n\n# A\n"


@pytest.mark.cargo
def test_inspect_shows_typed_signatures(example: Path) -> None:
    result = run_cli("inspect", "-p", "example-plugin", cwd=example)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "wire contract: v2" in lines and "wasi: no" in lines  # v2: the template records its types
    assert "  add(one: i32, two: i32) -> i32  [native]" in lines
    assert "  parse_port(text: &str) -> Result<u16, PortError>  [buffer]" in lines
    assert "  stats(text: &str) -> Stats  [buffer]" in lines
    report = json.loads(run_cli("inspect", "--json", "-p", "example-plugin", cwd=example).stdout)
    assert report["wire_version"] == 2 and len(report["sha256"]) == 64
    assert {e["name"] for e in report["exports"]} == {"add", "length", "greet", "stats", "parse_port", "preprocess"}


def test_inspect_a_plain_wasm_file(tmp_path: Path) -> None:
    import wasmtime

    path = tmp_path / "plain.wasm"
    path.write_bytes(wasmtime.wat2wasm('(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add) (memory (export "memory") 2 3))'))
    result = run_cli("inspect", str(path))
    assert "wire contract: none (plain wasm: numeric exports, call_raw)" in result.stdout
    assert "  add(p0: i32, p1: i32) -> i32  [raw]" in result.stdout
    assert "memory: 2 pages (128 KiB) at start, at most 3 pages" in result.stdout
    bad = tmp_path / "bad.wasm"
    bad.write_text("nope")
    assert_one_line_error(run_cli("inspect", str(bad)), 1, "bad.wasm is not a WebAssembly module")


@pytest.mark.cargo
def test_example_functions_from_python(example: Path) -> None:
    report = json.loads(run_cli("build", "--json", "-p", "example-plugin", cwd=example).stdout)
    with wasmforge.load(report["artifacts"][0]["path"]) as plugin:
        assert plugin.stats("hello big world") == {"words": 3, "longest": "hello"}
        assert plugin.parse_port("8080") == 8080
        with pytest.raises(wasmforge.PluginError, match="^port 0 is not a usable port$"):
            plugin.parse_port("0")
