"""Plugins built for wasm32-wasi: std's println! reaches Python, captured or forwarded."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import wasmforge
from conftest import PLUGINS, scaffold_with_plugin
from helpers import run_cli


@pytest.fixture(scope="module")
def wasi(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target):
    return scaffold_with_plugin(tmp_path_factory.mktemp("wasi"), "wasiplug", PLUGINS / "wasi.rs", target="wasm32-wasi")


def test_built_for_wasm32_wasi(wasi) -> None:
    # Debian 12's rustc calls the target wasm32-wasi, Debian 13's (Rust >= 1.84) wasm32-wasip1.
    assert wasi.wasm.parents[1].name in ("wasm32-wasi", "wasm32-wasip1"), wasi.wasm
    result = run_cli("build", "--target", "wasm32-wasi", "--json", cwd=wasi.root)
    assert result.returncode == 0, result.stderr
    # The name cargo built for, whichever of the two was asked for.
    assert json.loads(result.stdout)["target"] == wasi.wasm.parents[1].name


def test_output_captured_by_a_callable(wasi) -> None:
    out, err = [], []
    with wasmforge.load(wasi.wasm, stdout=out.append, stderr=err.append) as plugin:
        assert plugin.uses_wasi
        assert plugin.shout("hey") == "HEY"
        assert b"".join(out) == b"shouting hey\n"  # delivered before the call returned
        assert b"".join(err) == b"to stderr: 3\n"
        assert plugin.add(1, 2) == 3
        assert b"".join(out) == b"shouting hey\nadding 1 and 2\n"
        assert plugin.has_clock() is True


def test_output_into_file_objects(wasi) -> None:
    text, binary = io.StringIO(), io.BytesIO()
    with wasmforge.load(wasi.wasm, stdout=text, stderr=binary) as plugin:
        plugin.shout("é")
    assert text.getvalue() == "shouting é\n" and binary.getvalue() == b"to stderr: 2\n"


def test_output_forwarded_to_python_by_default(wasi, capsys) -> None:
    with wasmforge.load(wasi.wasm) as plugin:
        plugin.shout("x")
    captured = capsys.readouterr()
    assert captured.out == "shouting x\n" and captured.err == "to stderr: 1\n"


def test_inherit_writes_to_the_process_descriptors(wasi) -> None:
    script = f"import wasmforge; p = wasmforge.load({str(wasi.wasm)!r}, stdout='inherit', stderr='inherit'); print(p.shout('q'))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "shouting q\nQ\n" and result.stderr == "to stderr: 1\n"


def test_cli_call_shows_the_plugin_output_then_the_result(wasi) -> None:
    result = run_cli("call", "--plugin", str(wasi.wasm), "shout", "hi")
    assert result.stdout == "shouting hi\nHI\n"
    assert result.stderr == "to stderr: 2\n"
