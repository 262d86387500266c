"""`wasmforge build`: real cargo, artifacts from cargo's messages, errors that say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import copy_workspace, assert_one_line_error, run_cli
from wasmforge.workspace.build import build, warning_blocks
from wasmforge.workspace.settings import load_settings
from wasmforge.errors import BuildError, UsageError


@pytest.mark.cargo
def test_build_prints_path_size_and_time(demo) -> None:
    result = run_cli("build", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("built demo-plugin: ")
    assert f": {demo.artifact} (" in line  # outside the workspace (the shared target dir): shown absolute
    assert " KiB) in " in line and line.endswith(" s")


@pytest.mark.cargo
def test_build_json_reports_artifacts_from_cargo(demo) -> None:
    result = run_cli("build", "--json", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["profile"] == "debug"
    assert report["target"] == "wasm32-unknown-unknown"
    (artifact,) = report["artifacts"]
    assert artifact["crate"] == "demo-plugin"
    assert Path(artifact["path"]) == demo.artifact
    assert artifact["size"] == demo.artifact.stat().st_size > 1000
    assert isinstance(report["seconds"], float)


@pytest.mark.cargo
def test_build_takes_the_artifact_path_from_cargo_not_a_guess(demo, shared_cargo_target: Path, monkeypatch) -> None:
    """With the target dir moved by cargo's own config (no environment variable to read), the
    artifact is where cargo says, not in ./target."""
    monkeypatch.delenv("CARGO_TARGET_DIR")
    config = demo.root / ".cargo" / "config.toml"
    before = config.read_text(encoding="utf-8") if config.exists() else None  # `new` writes it where crates are Debian's
    config.parent.mkdir(exist_ok=True)
    config.write_text(f"{before or ''}\n[build]\ntarget-dir = {json.dumps(str(shared_cargo_target))}\n", encoding="utf-8")
    try:
        result = build(load_settings(demo.root))
    finally:
        if before is None:
            shutil.rmtree(config.parent)
        else:
            config.write_text(before, encoding="utf-8")
    assert not (demo.root / "target").exists()
    assert result.artifacts[0].path == demo.artifact
    assert result.artifacts[0].path.is_relative_to(shared_cargo_target)


@pytest.mark.cargo
def test_build_with_package_flag(demo) -> None:
    result = run_cli("build", "-p", "demo-plugin", "--json", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    assert [a["crate"] for a in json.loads(result.stdout)["artifacts"]] == ["demo-plugin"]


@pytest.mark.cargo
def test_unknown_package_is_a_usage_error(demo) -> None:
    result = run_cli("build", "-p", "nope", cwd=demo.root)
    assert_one_line_error(result, 2, "no crate 'nope'", "demo-plugin")


@pytest.mark.cargo
def test_a_crate_without_cdylib_is_named(demo) -> None:
    with pytest.raises(BuildError, match="demo-macro.*produced no .wasm"):
        build(load_settings(demo.root), ["demo-macro"])


def test_build_outside_a_workspace_says_how_to_make_one(tmp_path: Path) -> None:
    result = run_cli("build", cwd=tmp_path)
    assert_one_line_error(result, 2, "not inside a wasmforge workspace", "wasmforge new NAME")


@pytest.mark.cargo
def test_a_broken_build_shows_cargo_errors_and_exits_1(demo, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    copy_workspace(demo.root, broken)
    lib = broken / "crates/demo-plugin/src/lib.rs"
    lib.write_text(lib.read_text().replace("one + two", "one + \"two\""))
    result = run_cli("build", cwd=broken)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error[E0277]" in result.stderr  # cargo's rendered diagnostic, streamed
    assert "src/lib.rs" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: build failed: error[E0277]") and "crates/demo-plugin/src/lib.rs:" in last

    as_json = run_cli("build", "--json", cwd=broken)
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and report["ok"] is False
    assert "error[E0277]" in report["diagnostics"]


@pytest.mark.cargo
def test_diagnostics_stream_to_the_callback_as_they_come(demo, tmp_path: Path) -> None:
    broken = tmp_path / "warn"
    copy_workspace(demo.root, broken)
    lib = broken / "crates/demo-plugin/src/lib.rs"
    lib.write_text(lib.read_text() + "\nfn unused_helper() {}\n")
    seen: list[str] = []
    result = build(load_settings(broken), on_diagnostic=seen.append)
    assert any("unused_helper" in line for line in seen)
    assert "never used" in result.diagnostics and "generated 1 warning" in result.diagnostics
    # One warning, whatever else cargo says about it ("`warn-plugin` (lib) generated 1 warning").
    assert result.warnings == 1
    report = json.loads(run_cli("build", "--json", cwd=broken).stdout)
    assert report["warnings"] == 1 and "unused_helper" in report["diagnostics"]


@pytest.mark.cargo
def test_unknown_setting_in_wasmforge_toml_is_named(demo, tmp_path: Path) -> None:
    ws = tmp_path / "cfg"
    copy_workspace(demo.root, ws)
    (ws / "wasmforge.toml").write_text("[build]\nprofle = \"release\"\n")
    result = run_cli("build", cwd=ws)
    assert_one_line_error(result, 2, "unknown setting [build] profle", "[build] profile")


@pytest.mark.cargo
@pytest.mark.parametrize("args", [["--bogus"], ["--target", "x86_64"], ["-p"]])
def test_bad_build_arguments_are_usage_errors(demo, args: list[str]) -> None:
    result = run_cli("build", *args, cwd=demo.root)
    assert_one_line_error(result, 2, "wasmforge build --help")


@pytest.mark.cargo
def test_release_build_is_small(demo) -> None:
    result = run_cli("build", "--release", "--json", cwd=demo.root)
    assert result.returncode == 0, result.stderr
    (artifact,) = json.loads(result.stdout)["artifacts"]
    assert "/release/" in artifact["path"]
    assert artifact["size"] < 400_000  # no DWARF from std: see the template's [profile.release]


# ---- a missing release build, and where cargo puts what it builds ---------------------------------


def test_a_missing_release_build_says_build_release(tmp_path: Path) -> None:
    import wasmforge
    from wasmforge.errors import PluginLoadError

    release = tmp_path / "target/wasm32-unknown-unknown/release/x_plugin.wasm"
    with pytest.raises(PluginLoadError, match=r"; build one with `wasmforge build --release`$"):
        wasmforge.load(release)
    with pytest.raises(PluginLoadError, match=r"; build one with `wasmforge build`$"):
        wasmforge.load(tmp_path / "target/wasm32-unknown-unknown/debug/x_plugin.wasm")
    result = run_cli("call", "--plugin", str(release), "add", cwd=tmp_path)
    assert_one_line_error(result, 2, f"no plugin at {release}: no such file; build it with `wasmforge build --release`")


@pytest.mark.cargo
def test_target_dir_setting_is_a_path_from_the_workspace(demo, tmp_path: Path) -> None:
    from wasmforge.errors import ConfigError

    ws = copy_workspace(demo.root, tmp_path / "cfg")
    for written, meant in (('"~/.cache/wf-target"', Path.home() / ".cache/wf-target"),
                           ('"build-here"', ws / "build-here"), ('"/abs/target"', Path("/abs/target"))):
        (ws / "wasmforge.toml").write_text(f"[build]\ntarget_dir = {written}\n")
        assert load_settings(ws, env={}).target_dir == meant
    (ws / "wasmforge.toml").write_text('[build]\ntarget_dir = " "\n')
    with pytest.raises(ConfigError, match=r"\[build\] target_dir is empty"):
        load_settings(ws, env={})
    (ws / "wasmforge.toml").write_text('[build]\ntarget_dir = "Cargo.toml"\n')
    result = run_cli("build", cwd=ws)
    assert_one_line_error(result, 2, "[build] target_dir = 'Cargo.toml' is not a directory")


@pytest.mark.cargo
def test_target_dir_moves_the_build_unless_cargo_target_dir_is_set(demo, tmp_path: Path, shared_cargo_target: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One target_dir for every workspace shares their compiled dependencies; the shared test
    target dir, where demo's dependencies are built, stands in for it."""
    ws = copy_workspace(demo.root, tmp_path / "moved")
    config = ws / "wasmforge.toml"
    commented = '# target_dir = "~/.cache/wasmforge/target"'
    assert commented in config.read_text()
    config.write_text(config.read_text().replace(commented, f"target_dir = {json.dumps(str(shared_cargo_target))}"))
    monkeypatch.delenv("CARGO_TARGET_DIR")
    result = build(load_settings(ws))
    assert result.artifacts[0].path == shared_cargo_target / "wasm32-unknown-unknown/debug/demo_plugin.wasm"
    assert not (ws / "target").exists()
    # CARGO_TARGET_DIR in the environment wins, as it does over cargo's own configuration.
    config.write_text(config.read_text().replace(json.dumps(str(shared_cargo_target)), '"elsewhere"'))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(shared_cargo_target))
    again = build(load_settings(ws))
    assert again.artifacts[0].path.is_relative_to(shared_cargo_target)
    assert not (ws / "elsewhere").exists()
#: What cargo 1.65 printed for a plugin with two warnings, one of them in two places, and a manifest warning.
CARGO_WARNINGS = """\
warning: unused manifest key: package.colour
   Compiling w-plugin v0.1.0 (/ws/crates/w-plugin)
warning: unused variable: `x`
  --> crates/w-plugin/src/lib.rs:85:25
   |
85 | fn other_unused() { let x = 1; }
   |                         ^ help: if this is intentional, prefix it with an underscore: `_x`
   |
   = note: `#[warn(unused_variables)]` on by default

warning: function `other_unused` is never used
  --> crates/w-plugin/src/lib.rs:85:4
   |
85 | fn other_unused() { let x = 1; }
   |    ^^^^^^^^^^^^

warning: `w-plugin` (lib) generated 2 warnings (1 duplicate)
warning: build failed, waiting for other jobs to finish...
    Finished dev [unoptimized] target(s) in 1.91s
"""


def test_warnings_are_counted_once_each_without_cargos_summaries() -> None:
    blocks = warning_blocks(CARGO_WARNINGS)
    assert [block.splitlines()[0] for block in blocks] == [
        "warning: unused manifest key: package.colour",
        "warning: unused variable: `x`",
        "warning: function `other_unused` is never used",
    ]
    assert blocks[1].endswith("= note: `#[warn(unused_variables)]` on by default")
    assert blocks[2].endswith("   |    ^^^^^^^^^^^^")
    coloured = CARGO_WARNINGS.replace("warning", "\x1b[0m\x1b[1m\x1b[33mwarning\x1b[0m")
    assert warning_blocks(coloured) == blocks
    assert warning_blocks("   Compiling x\n    Finished dev\n") == []
