"""Errors keep their causes for library users (the command line prints one line regardless)."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

import wasmforge
from helpers import assert_one_line_error, run_cli
from wasmforge.workspace.manifest import workspace_crates

TRAPS = wasmtime.wat2wasm('(module (func (export "boom") unreachable))')


def test_a_file_that_cannot_be_read_keeps_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(wasmforge.PluginLoadError, match="no plugin at") as caught:
        wasmforge.load(tmp_path / "missing.wasm")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_trap_keeps_wasmtimes_trap_with_its_backtrace(tmp_path: Path) -> None:
    with wasmforge.Plugin.from_bytes(TRAPS, name="traps.wasm") as plugin:
        with pytest.raises(wasmforge.PluginTrap, match=r"boom\(\) in traps.wasm trapped") as caught:
            plugin.boom()
    assert isinstance(caught.value.__cause__, wasmtime.Trap)
    assert caught.value.__cause__.trap_code == wasmtime.TrapCode.UNREACHABLE


def test_a_workspace_without_cargo_toml_keeps_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(wasmforge.ConfigError, match="it is not a Cargo workspace") as caught:
        workspace_crates(tmp_path)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_the_command_line_still_prints_one_line(tmp_path: Path) -> None:
    plugin = tmp_path / "traps.wasm"
    plugin.write_bytes(TRAPS)
    assert_one_line_error(run_cli("call", "--plugin", str(plugin), "boom", cwd=tmp_path), 1,
                          "boom() in traps.wasm trapped: wasm trap: wasm `unreachable` instruction executed")
