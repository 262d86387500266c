"""wasm-opt on release builds: smaller, with the metadata section and panic messages kept; without it, nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from helpers import assert_one_line_error, run_cli
from wasmforge import BuildError, PluginPanic
from wasmforge.workspace.build import build
from wasmforge.workspace.optimize import find_wasm_opt, optimize
from wasmforge.workspace.settings import load_settings

WASM_OPT = find_wasm_opt()
needs_wasm_opt = pytest.mark.skipif(WASM_OPT is None, reason="wasm-opt is not installed (scripts/setup.sh --test installs binaryen)")


@pytest.mark.cargo
@needs_wasm_opt
def test_a_release_build_is_optimized_and_keeps_metadata_and_panics(boundary) -> None:
    (artifact,) = build(load_settings(boundary.root, {"profile": "release"})).artifacts
    assert artifact.size_before_wasm_opt is not None and artifact.size < artifact.size_before_wasm_opt
    assert artifact.path.stat().st_size == artifact.size
    inspected = run_cli("inspect", str(artifact.path), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert "explode(n: u32) -> String" in inspected.stdout  # the wasmforge.exports section survived
    with wasmforge.load(artifact.path, host_functions=_host_functions()) as plugin:
        assert str(plugin.exports["explode"]) == "explode(n: u32) -> String"
        assert plugin.explode(2) == "fine 2"
        with pytest.raises(PluginPanic) as caught:
            plugin.explode(3)
        assert caught.value.panic_message == "exploded on 3"
        assert caught.value.file == "crates/boundary-plugin/src/lib.rs"
        with pytest.raises(PluginPanic, match="a message of its own"):
            plugin.explode_with("a message of its own")
    # cargo does not rebuild: the file is not optimized twice, and the sizes are still known.
    (again,) = build(load_settings(boundary.root, {"profile": "release"})).artifacts
    assert (again.size, again.size_before_wasm_opt) == (artifact.size, artifact.size_before_wasm_opt)


def _host_functions() -> dict:
    from test_boundary import host_functions

    return host_functions([])


@pytest.mark.cargo
@needs_wasm_opt
def test_build_reports_the_sizes(demo) -> None:
    result = run_cli("build", "--release", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    assert "wasm-opt demo-plugin: " in result.stdout and " -> " in result.stdout
    data = json.loads(run_cli("build", "--release", "--json", cwd=demo.root).stdout)
    (artifact,) = data["artifacts"]
    assert artifact["size_before_wasm_opt"] > artifact["size"] == Path(artifact["path"]).stat().st_size


@pytest.mark.cargo
def test_without_wasm_opt_nothing_changes(demo) -> None:
    env = {"WASMFORGE_WASM_OPT": "/nonexistent/wasm-opt"}
    result = run_cli("build", "--release", "--json", cwd=demo.root, env=env)
    (artifact,) = json.loads(result.stdout)["artifacts"]
    assert "size_before_wasm_opt" not in artifact and artifact["size"] == Path(artifact["path"]).stat().st_size
    assert "wasm-opt" not in run_cli("build", "--release", cwd=demo.root, env=env).stdout


def test_doctor_says_what_wasm_opt_would_save() -> None:
    result = run_cli("doctor", env={"WASMFORGE_WASM_OPT": "/nonexistent/wasm-opt"})
    assert "wasm-opt would save about 40% of a release .wasm" in result.stdout
    assert "apt-get install binaryen" in result.stdout


@needs_wasm_opt
def test_doctor_names_the_wasm_opt_it_runs() -> None:
    assert f"{WASM_OPT} (wasm-opt version" in run_cli("doctor").stdout


def test_a_failing_wasm_opt_is_a_build_error(tmp_path: Path) -> None:
    path = tmp_path / "x.wasm"
    path.write_bytes(wasmtime.wat2wasm("(module)"))
    with pytest.raises(BuildError, match=r"^wasm-opt failed on x\.wasm: .*; set WASMFORGE_WASM_OPT=off"):
        optimize(path, "/bin/false")
    assert path.read_bytes() == wasmtime.wat2wasm("(module)")  # left as cargo made it
