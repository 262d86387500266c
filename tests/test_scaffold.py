"""`wasmforge new`: the layout it writes, and everything it refuses."""

from __future__ import annotations

import filecmp
import re
import sys
from pathlib import Path

import pytest

from helpers import REPO, assert_one_line_error, run_cli
from wasmforge.errors import ScaffoldError
from wasmforge.workspace.scaffold import check_name, new_workspace
from wasmforge.workspace.toolchain import uses_debian_registry

EXPECTED_FILES = {
    "Cargo.toml",
    "pytest.ini",
    "tests/test_plugin.py",
    "wasmforge.toml",
    "README.md",
    ".gitignore",
    "crates/wasmforge-pdk/Cargo.toml",
    "crates/wasmforge-pdk/src/lib.rs",
    "crates/tool-plugin/Cargo.toml",
    "crates/tool-plugin/src/lib.rs",
    "crates/tool-macro/Cargo.toml",
    "crates/tool-macro/src/lib.rs",
    "crates/tool-runner/Cargo.toml",
    "crates/tool-runner/build.rs",
    "crates/tool-runner/src/main.rs",
}


def made_here(lock: bool = True) -> set[str]:
    """What `new` adds to the template where wasmforge builds from Debian's registry: cargo's
    source configuration and a lock file resolved offline."""
    if not uses_debian_registry():
        return set()
    return {".cargo/config.toml", "Cargo.lock"} if lock else {".cargo/config.toml"}


def written(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_new_writes_the_series_layout(tmp_path: Path) -> None:
    result = run_cli("new", "tool", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "tool"
    assert written(root) == EXPECTED_FILES | made_here()
    cargo = (root / "Cargo.toml").read_text()
    assert "[workspace]" in cargo and 'members = ["crates/*"]' in cargo
    plugin_toml = (root / "crates/tool-plugin/Cargo.toml").read_text()
    assert 'crate-type = ["cdylib", "rlib"]' in plugin_toml
    assert 'edition = "2021"' in plugin_toml
    macro_toml = (root / "crates/tool-macro/Cargo.toml").read_text()
    assert "proc-macro = true" in macro_toml and "syn" in macro_toml and "quote" in macro_toml
    lib = (root / "crates/tool-plugin/src/lib.rs").read_text()
    assert "use wasmforge_pdk::plugin_fn;" in lib
    assert "#[plugin_fn]\npub fn add(one: i32, two: i32) -> i32" in lib
    pdk = (root / "crates/wasmforge-pdk/src/lib.rs").read_text()
    assert "pub use tool_macro::{host_fn, plugin_fn};" in pdk
    assert '# crates = ["tool-plugin"]' in (root / "wasmforge.toml").read_text()
    assert "/target" in (root / ".gitignore").read_text()
    leftovers = re.findall(r"\{\{(?:name|crate)\}\}", "".join((root / f).read_text() for f in EXPECTED_FILES))
    assert leftovers == []


def test_without_offline_no_debian_paths_are_baked_in(tmp_path: Path) -> None:
    new_workspace("tool", tmp_path / "tool", offline=False)
    for path in (tmp_path / "tool").rglob("*"):
        if path.is_file():
            assert "/usr/share/cargo" not in path.read_text(), path
    assert not (tmp_path / "tool/.cargo").exists()


def test_offline_writes_the_debian_registry_config(tmp_path: Path) -> None:
    new_workspace("tool", tmp_path / "tool", offline=True)
    config = (tmp_path / "tool/.cargo/config.toml").read_text()
    assert 'replace-with = "debian"' in config
    assert 'directory = "/usr/share/cargo/registry"' in config


def test_dry_run_lists_files_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tool").exists()
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert listed == EXPECTED_FILES | made_here(lock=False)
    assert str(tmp_path / "tool") in result.stdout.splitlines()[0]


def test_path_option_chooses_the_directory(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--path", "elsewhere/here", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert written(tmp_path / "elsewhere/here") == EXPECTED_FILES | made_here()


def test_an_empty_existing_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "tool").mkdir()
    new_workspace("tool", tmp_path / "tool")
    assert written(tmp_path / "tool") == EXPECTED_FILES | made_here()


def test_a_non_empty_directory_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "tool"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_cli("new", "tool", cwd=tmp_path)
    assert_one_line_error(result, 2, str(target), "not empty")
    assert written(target) == {"notes.txt"}
    assert (target / "notes.txt").read_text() == "mine"


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("mine")
    result = run_cli("new", "tool", cwd=tmp_path)
    assert_one_line_error(result, 2, "not a directory")
    assert (tmp_path / "tool").read_text() == "mine"


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("My Plugin", "my-plugin"),
        ("1st", "plugin-1st"),
        ("has.dot", "has-dot"),
        ("trailing-", "trailing"),
        ("", None),
        ("fn", "fn-plugin"),
        ("a" * 49, None),
    ],
)
def test_invalid_names_are_refused_with_a_suggestion(tmp_path: Path, name: str, suggestion: str) -> None:
    with pytest.raises(ScaffoldError, match="invalid name") as caught:
        check_name(name)
    if suggestion:
        assert repr(suggestion) in str(caught.value)
    result = run_cli("new", name, cwd=tmp_path)
    assert_one_line_error(result, 2, "invalid name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "my-plugin", "my_plugin", "p2p", "x-1-y"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


def test_unknown_template_is_refused(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--template", "nope", cwd=tmp_path)
    assert_one_line_error(result, 2, "unknown template 'nope'", "default")


def test_example_workspace_matches_the_templates(tmp_path: Path) -> None:
    """example-workspace/ is `wasmforge new example`, committed; it must never drift."""
    fresh = tmp_path / "example"
    new_workspace("example", fresh, offline=False, lock=False)  # what this machine adds is not committed
    committed = REPO / "example-workspace"
    for relative in written(fresh):
        assert (committed / relative).is_file(), f"example-workspace lacks {relative}"
        assert filecmp.cmp(fresh / relative, committed / relative, shallow=False), (
            f"example-workspace/{relative} differs from the template; run scripts/regenerate-example.py"
        )
    # The one addition: a second plugin that makes a chain with the first.
    extra = {f for f in written(committed) if not f.startswith("target/") and f != "Cargo.lock"} - written(fresh)
    assert extra == {
        "crates/example-toc-plugin/Cargo.toml",
        "crates/example-toc-plugin/src/lib.rs",
    }
    lib = (committed / "crates/example-plugin/src/lib.rs").read_text()
    assert "pub fn add(one: i32, two: i32) -> i32" in lib and "pub fn length(s: &str) -> u32" in lib


# ---- crates from Debian's registry for plain cargo too, where wasmforge builds from it -----------


def test_new_writes_debians_registry_where_wasmforge_builds_from_it(tmp_path: Path) -> None:
    result = run_cli("new", "tool", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "tool/.cargo/config.toml"
    said = ("plain cargo and editors take crates from Debian's registry too, as `wasmforge build` does "
            "(.cargo/config.toml; `new --online` leaves it out)")
    if uses_debian_registry():
        assert 'replace-with = "debian"' in config.read_text() and "offline = true" in config.read_text()
        assert said in result.stderr.splitlines()
    else:
        assert not config.exists() and said not in result.stderr


def test_online_leaves_the_registry_out(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--online", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tool/.cargo").exists()
    assert "Debian's registry" not in result.stderr


def test_wasmforge_offline_in_the_environment_writes_it_whatever_the_toolchain(tmp_path: Path) -> None:
    result = run_cli("new", "tool", env={"WASMFORGE_OFFLINE": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tool/.cargo/config.toml").is_file()
    assert "(.cargo/config.toml; `new --online` leaves it out)" in result.stderr


def test_explicit_offline_needs_no_opt_out_hint(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--offline", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "take crates from Debian's registry too, as `wasmforge build` does (.cargo/config.toml)" in result.stderr


def test_online_and_offline_together_are_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("new", "tool", "--online", "--offline", cwd=tmp_path)
    assert_one_line_error(result, 2, "--offline", "--online")
    assert list(tmp_path.iterdir()) == []


def test_a_template_with_its_own_cargo_config_keeps_it(tmp_path: Path) -> None:
    template = tmp_path / "own"
    (template / ".cargo").mkdir(parents=True)
    (template / ".cargo/config.toml").write_text("[build]\njobs = 1\n")
    (template / "Cargo.toml").write_text('[workspace]\nmembers = []\n')
    result = run_cli("new", "tool", "--template", str(template), env={"WASMFORGE_OFFLINE": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tool/.cargo/config.toml").read_text() == "[build]\njobs = 1\n"
    assert f"note: template {str(template)!r} writes its own .cargo/config.toml; Debian's registry was not added to it" \
        in result.stderr.splitlines()


def test_new_says_how_to_share_compiled_dependencies(tmp_path: Path) -> None:
    import os
    import subprocess

    def new_without_a_target_dir(*args: str) -> "subprocess.CompletedProcess[str]":
        env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
        env["PYTHONPATH"] = str(REPO)
        return subprocess.run([sys.executable, "-m", "wasmforge", "new", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    tip = ("tip: its first build compiles proc-macro2, quote, serde, serde_json, syn and what they need; to compile "
           "them once for all your workspaces, set target_dir in wasmforge.toml (or CARGO_TARGET_DIR) to one directory")
    assert tip in new_without_a_target_dir("tool").stderr.splitlines()
    shared = run_cli("new", "other", cwd=tmp_path, env={"CARGO_TARGET_DIR": str(tmp_path / "shared")})
    assert "tip:" not in shared.stderr  # already shared
    assert "tip:" not in new_without_a_target_dir("bare", "--template", "minimal").stderr  # no crates to compile
