"""The pytest fixtures (registered through pytest11) and `wasmforge test`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import copy_workspace, REPO, assert_one_line_error, run_cli


@pytest.fixture
def workspace(demo, tmp_path: Path) -> Path:
    """A copy of the session's demo workspace, which the test may break."""
    root = tmp_path / "demo"
    copy_workspace(demo.root, root)
    return root


@pytest.mark.cargo
def test_wasmforge_test_runs_cargo_test_then_pytest(workspace: Path) -> None:
    result = run_cli("test", cwd=workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["cargo test: ok, 1 passed, 0 failed", "pytest: ok, 4 passed, 0 failed"]
    assert "test tests::examples ... ok" in result.stderr  # cargo's own output streams to stderr
    assert "crates/demo-plugin/tests/test_demo_plugin.py ...." in result.stderr


@pytest.mark.cargo
def test_a_failing_rust_test_fails_the_run(workspace: Path) -> None:
    lib = workspace / "crates/demo-plugin/src/lib.rs"
    lib.write_text(lib.read_text().replace("assert_eq!(add(1, 2), 3);", "assert_eq!(add(1, 2), 4);"))
    result = run_cli("test", "--rust-only", cwd=workspace)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["cargo test: FAILED, 0 passed, 1 failed"]


@pytest.mark.cargo
def test_a_failing_python_test_fails_the_run(workspace: Path) -> None:
    tests = workspace / "crates/demo-plugin/tests/test_demo_plugin.py"
    tests.write_text(tests.read_text() + "\n\ndef test_wrong(wasm_plugin):\n    assert wasm_plugin.add(2, 2) == 5\n")
    result = run_cli("test", "--python-only", cwd=workspace)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["pytest: FAILED, 4 passed, 1 failed"]
    assert "assert 4 == 5" in result.stderr


@pytest.mark.cargo
def test_json_reports_each_runner_and_failures(workspace: Path) -> None:
    import json

    result = run_cli("test", "--python-only", "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "suites": [
        {"name": "pytest", "ok": True, "ran": True, "passed": 4, "failed": 0, "note": ""},
    ]}
    assert "crates/demo-plugin/tests/test_demo_plugin.py ...." in result.stderr  # pytest's own output still streams to stderr
    tests = workspace / "crates/demo-plugin/tests/test_demo_plugin.py"
    tests.write_text(tests.read_text() + "\n\ndef test_wrong(wasm_plugin):\n    assert wasm_plugin.add(2, 2) == 5\n")
    failed = run_cli("test", "--python-only", "--json", "--", "-k", "add or wrong", cwd=workspace)
    assert failed.returncode == 1
    assert json.loads(failed.stdout) == {"ok": False, "suites": [
        {"name": "pytest", "ok": False, "ran": True, "passed": 1, "failed": 1, "note": ""},
    ]}


@pytest.mark.cargo
def test_pytest_args_pass_through(workspace: Path) -> None:
    result = run_cli("test", "--python-only", "--", "-k", "add", cwd=workspace)
    assert result.stdout.splitlines() == ["pytest: ok, 1 passed, 0 failed"]


@pytest.mark.cargo
def test_both_profiles(workspace: Path) -> None:
    (workspace / "pytest.ini").write_text("[pytest]\ntestpaths = crates\nwasmforge_profiles = debug release\n")
    result = run_cli("test", "--python-only", "--", "-v", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "test_add[debug] PASSED" in result.stderr and "test_add[release] PASSED" in result.stderr
    assert result.stdout.splitlines() == ["pytest: ok, 8 passed, 0 failed"]


@pytest.mark.cargo
def test_fixtures_for_several_plugins(tmp_path: Path) -> None:
    root = tmp_path / "example"
    copy_workspace(REPO / "example-workspace", root)
    (root / "tests").mkdir()
    (root / "tests/test_plugin.py").write_text(
        "def test_both(wasm_plugins, wasm_artifacts, wasm_profile):\n"
        "    assert sorted(wasm_plugins) == ['example-plugin', 'example-toc-plugin']\n"
        "    assert wasm_plugins['example-toc-plugin'].preprocess('# A') .startswith('**Contents**')\n"
        "    assert wasm_profile == 'debug' and wasm_artifacts['example-plugin'].suffix == '.wasm'\n\n"
        "def test_factory_with_options(load_wasm_plugin):\n"
        "    plugin = load_wasm_plugin('example-plugin', memory_limit='32MiB')\n"
        "    assert plugin.limits.memory == 32 << 20 and plugin.add(1, 2) == 3\n\n"
        "def test_ambiguous(wasm_plugin):\n"
        "    pass\n"
    )
    result = run_cli("test", "--python-only", "--", "tests", cwd=root)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["pytest: FAILED, 2 passed, 1 failed"]
    assert ("the workspace has several plugin crates (example-plugin, example-toc-plugin); put the test in that "
            "crate's directory (crates/NAME/tests/), or name one" in result.stderr)


def test_test_outside_a_workspace(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("test", cwd=tmp_path), 2, "not inside a wasmforge workspace")


@pytest.mark.cargo
def test_workspace_without_python_tests(workspace: Path) -> None:
    shutil.rmtree(workspace / "crates/demo-plugin/tests")
    result = run_cli("test", cwd=workspace)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "pytest: no test_*.py in the workspace; skipped"
