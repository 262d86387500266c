"""Shipping a plugin inside a Python wheel: `build --out-dir`, load_resource, a real wheel in a fresh venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import wasmtime

import wasmforge
from helpers import REPO, assert_one_line_error, run_cli
from wasmforge import PluginLoadError

SEVEN = wasmtime.wat2wasm('(module (func (export "seven") (result i32) (i32.const 7)))')


def documented_pyproject() -> str:
    """The pyproject.toml docs/PYTHON_API.md shows for shipping a plugin."""
    text = (REPO / "docs" / "PYTHON_API.md").read_text()
    section = text[text.index("## Shipping a plugin in a wheel"):]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def make_package(base: Path, name: str) -> Path:
    package = base / name
    (package / "plugins").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugins" / "seven.wasm").write_bytes(SEVEN)
    return package


def in_python(code: str, path: Path) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(REPO)])})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_load_resource_reads_package_data(tmp_path: Path) -> None:
    make_package(tmp_path, "sevens")
    code = ("import wasmforge; p = wasmforge.load_resource('sevens', 'plugins/seven.wasm', timeout=5); "
            "q = wasmforge.load_resource('sevens', 'plugins/seven.wasm', timeout=5); "
            "print(p.name, p.call_raw('seven'), p.limits.timeout)")
    assert in_python(code, tmp_path) == "seven.wasm 7 5"


def test_load_resource_reads_a_zipped_package(tmp_path: Path) -> None:
    make_package(tmp_path / "src", "zipped")
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in (tmp_path / "src").rglob("*"):
            zipped.write(file, file.relative_to(tmp_path / "src").as_posix())
    code = "import wasmforge, zipped; print(zipped.__file__); print(wasmforge.load_resource('zipped', 'plugins/seven.wasm').call_raw('seven'))"
    where, value = in_python(code, archive).splitlines()
    assert where.startswith(str(archive)) and value == "7"


def test_the_same_bytes_load_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "cached_sevens")
    monkeypatch.syspath_prepend(str(tmp_path))
    with wasmforge.load_resource("cached_sevens", "plugins/seven.wasm") as first, \
            wasmforge.load_resource("cached_sevens", "plugins/seven.wasm") as second:
        assert first is not second
        assert first._loaded.compiled is second._loaded.compiled  # compiled once, keyed by the content


def test_load_resource_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "few_sevens")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"package 'few_sevens' has no file 'plugins/eight\.wasm'; "
                                              r"was it included as package data"):
        wasmforge.load_resource("few_sevens", "plugins/eight.wasm")
    with pytest.raises(PluginLoadError, match=r"cannot load 'x\.wasm' from package 'no_such_package_here'"):
        wasmforge.load_resource("no_such_package_here", "x.wasm")
    with pytest.raises(wasmforge.PluginIntegrityError):
        wasmforge.load_resource("few_sevens", "plugins/seven.wasm", sha256="0" * 64)


@pytest.mark.cargo
def test_out_dir_that_is_a_file_fails_before_building(demo, tmp_path: Path) -> None:
    taken = tmp_path / "plugins"
    taken.write_text("mine")
    result = run_cli("build", "--out-dir", str(taken), cwd=demo.root)
    assert_one_line_error(result, 2, f"--out-dir {taken} is not a directory")
    assert taken.read_text() == "mine"


@pytest.mark.cargo
@pytest.mark.timeout(1800)
def test_a_wheel_ships_a_plugin_that_loads_after_pip_install(demo, tmp_path: Path, shared_cargo_target: Path) -> None:
    project = tmp_path / "shouter"
    package = project / "shouter"
    built = run_cli("build", "--out-dir", str(package / "plugins"), cwd=demo.root, timeout=1500)
    assert built.returncode == 0, built.stderr
    copied = package / "plugins" / "demo_plugin.wasm"
    assert f"copied demo-plugin: {copied}" in built.stdout
    release = shared_cargo_target / "wasm32-unknown-unknown" / "release" / "demo_plugin.wasm"
    assert copied.read_bytes() == release.read_bytes()  # the release build, by default there
    (package / "__init__.py").write_text(
        "import wasmforge\n\nshout = wasmforge.load_resource('shouter', 'plugins/demo_plugin.wasm').greet\n")
    (project / "pyproject.toml").write_text(documented_pyproject())
    (project / ".gitignore").write_text("*.wasm\n")  # built files are usually ignored: the wheel still has it
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(dist),
                    str(project)], check=True, timeout=600, capture_output=True)
    (wheel,) = dist.glob("shouter-1.0.0-*.whl")
    assert "shouter/plugins/demo_plugin.wasm" in zipfile.ZipFile(wheel).namelist()

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=600, capture_output=True)
    # wasmforge and wasmtime come from this checkout and the session's environment; shouter only from the wheel.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])}
    result = subprocess.run([str(python), "-c", "import shouter; print(shouter.__file__); print(shouter.shout('wheel'))"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    where, said = result.stdout.splitlines()
    assert where.startswith(str(fresh)) and said == wasmforge.load(copied).greet("wheel")
