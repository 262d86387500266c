"""`wasmforge new`: the layout it writes, what it refuses, failures while writing, and the templates:
the built-in ones build and work, and a user's own template directory follows the same rules."""

from __future__ import annotations

import errno
import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, assert_one_line_error, run_cli
from wasmforge.errors import ScaffoldError
from wasmforge.workspace import scaffold
from wasmforge.workspace.scaffold import available_templates, check_name, new_workspace, plan
from wasmforge.workspace.settings import _SCHEMA, OLD_SPELLINGS, Settings, load_settings
from wasmforge.workspace.toolchain import uses_debian_registry


EXPECTED_FILES = {
    "Cargo.toml",
    "pytest.ini",
    "crates/tool-plugin/tests/test_tool_plugin.py",
    "wasmforge.toml",
    "README.md",
    ".gitignore",
    "rustfmt.toml",
    "crates/wasmforge-pdk/Cargo.toml",
    "crates/wasmforge-pdk/src/lib.rs",
    "crates/wasmforge-pdk/src/msgpack.rs",
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
    assert "use wasmforge_pdk::{plugin_fn, plugin_type};" in lib
    assert "#[plugin_fn]\npub fn add(one: i32, two: i32) -> i32" in lib
    pdk = (root / "crates/wasmforge-pdk/src/lib.rs").read_text()
    assert "pub use tool_macro::{host_fn, plugin_fn, plugin_state, plugin_type};" in pdk
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


def written_paths(root: Path) -> set[str]:
    """Files and directories under ``root``."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def make_template(root: Path, files: dict[str, str], config: str = "") -> Path:
    template = root / "tpl"
    template.mkdir()
    for relative, text in files.items():
        (template / relative).parent.mkdir(parents=True, exist_ok=True)
        (template / relative).write_text(text)
    if config:
        (template / "template.toml").write_text(config)
    return template


# ---- writing fails: one line, and only what `new` made is removed --------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_an_unusable_destination_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("new", "x", "--template", "minimal", "--path", "/proc/x", cwd=tmp_path)
    assert_one_line_error(result, 2, "could not create /proc/x", "nothing was written")
    assert list(tmp_path.iterdir()) == []


def failing_open(monkeypatch: pytest.MonkeyPatch, after: int, error: BaseException, before_failing=None) -> None:
    """scaffold's open() works ``after`` times, then raises ``error``."""
    calls = []

    def fake_open(path, mode="r", *args, **kwargs):
        calls.append(path)
        if len(calls) > after:
            if before_failing:
                before_failing(Path(path))
            raise error
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(scaffold, "open", fake_open, raising=False)


def test_a_failure_midway_removes_what_new_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/keep.txt").write_text("mine")
    failing_open(monkeypatch, 5, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(ScaffoldError, match=r"could not create .*: No space left on device; removed what it had created"):
        new_workspace("tool", tmp_path / "a/b/tool")
    assert written_paths(tmp_path) == {"a", "a/keep.txt"}
    assert (tmp_path / "a/keep.txt").read_text() == "mine"


def test_a_failure_keeps_an_empty_destination_that_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tool").mkdir()
    failing_open(monkeypatch, 3, OSError(errno.EIO, "Input/output error"))
    with pytest.raises(ScaffoldError, match="Input/output error"):
        new_workspace("tool", tmp_path / "tool")
    assert written_paths(tmp_path) == {"tool"}


def test_what_others_put_there_meanwhile_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def someone_else_writes(path: Path) -> None:
        (path.parent / "theirs.txt").write_text("theirs")

    failing_open(monkeypatch, 6, OSError(errno.ENOSPC, "No space left on device"), someone_else_writes)
    with pytest.raises(ScaffoldError, match="could not remove") as caught:
        new_workspace("tool", tmp_path / "tool")
    theirs = [p for p in (tmp_path / "tool").rglob("theirs.txt")]
    assert len(theirs) == 1 and theirs[0].read_text() == "theirs"
    assert {p for p in (tmp_path / "tool").rglob("*") if p.is_file()} == set(theirs)
    assert str(theirs[0].parent) in str(caught.value)


def test_an_interrupted_write_is_removed_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_open(monkeypatch, 4, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        new_workspace("tool", tmp_path / "tool")
    assert list(tmp_path.iterdir()) == []


# ---- conflicting outputs are refused before anything is written -----------------------------------


def test_a_file_and_a_directory_of_the_same_name_are_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "{{name}}": "file", "{{crate}}/z": "in a directory"})
    line = assert_one_line_error(run_cli("new", "x", "--template", str(template), cwd=tmp_path), 2,
                                 "writes x both as a file", str(template / "{{name}}"), str(template / "{{crate}}/z"))
    assert "nothing was written" in line
    assert not (tmp_path / "x").exists()


def test_a_file_where_an_included_part_has_a_directory_is_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "crates/wasmforge-pdk": "file"}, 'include = ["_guest"]\n')
    with pytest.raises(ScaffoldError, match="writes crates/wasmforge-pdk both as a file"):
        new_workspace("x", tmp_path / "x", template=str(template))
    assert not (tmp_path / "x").exists()


def test_a_file_and_a_directory_after_placeholders_are_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "{{name}}": "file", "x/z": "in a directory"})
    with pytest.raises(ScaffoldError, match="writes x both as a file"):
        new_workspace("x", tmp_path / "x", template=str(template))
    assert not (tmp_path / "x").exists()


def test_two_files_rendering_to_one_path_are_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "{{name}}.txt": "a", "x.txt": "b"})
    result = run_cli("new", "x", "--template", str(template), cwd=tmp_path)
    assert_one_line_error(result, 2, "writes x.txt twice", str(template / "{{name}}.txt"), str(template / "x.txt"))
    assert not (tmp_path / "x").exists()


def test_a_template_cargo_config_conflicts_with_offline(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", ".cargo/config.toml": ""})
    with pytest.raises(ScaffoldError, match=r"\.cargo/config\.toml .*which --offline writes too"):
        new_workspace("x", tmp_path / "x", template=str(template), offline=True)
    assert not (tmp_path / "x").exists()


# ---- template.toml types, placeholders, empty templates ---------------------------------------------


@pytest.mark.parametrize(
    "config, key, expected",
    [
        ("description = 5", "description", "a string"),
        ("description = true", "description", "a string"),
        ("description = ['a']", "description", "a string"),
        ("[description]\nx = 1", "description", "a string"),
        ("include = '_guest'", "include", "a list of strings"),
        ("include = [1]", "include", "a list of strings"),
        ("next = 'wasmforge build'", "next", "a list of strings"),
        ("next = ['wasmforge build', 2]", "next", "a list of strings"),
    ],
)
def test_template_config_values_of_the_wrong_type(tmp_path: Path, config: str, key: str, expected: str) -> None:
    template = make_template(tmp_path, {"Cargo.toml": ""}, config + "\n")
    result = run_cli("new", "x", "--template", str(template), cwd=tmp_path)
    assert_one_line_error(result, 2, f"{template / 'template.toml'}: {key} must be {expected}")
    assert not (tmp_path / "x").exists()


def test_an_unknown_placeholder_in_a_file_is_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "src/lib.rs": "// {{name}}\n// {{bogus}}\n"})
    result = run_cli("new", "x", "--template", str(template), cwd=tmp_path)
    assert_one_line_error(result, 2, "unknown placeholder {{bogus}}", str(template / "src/lib.rs"), "line 2",
                          "{{name}}, {{crate}}")
    assert not (tmp_path / "x").exists()


def test_an_unknown_placeholder_in_a_path_is_refused(tmp_path: Path) -> None:
    template = make_template(tmp_path, {"Cargo.toml": "", "crates/{{nmae}}-plugin/Cargo.toml": ""})
    with pytest.raises(ScaffoldError, match=r"unknown placeholder \{\{nmae\}\} in its path"):
        new_workspace("x", tmp_path / "x", template=str(template))


def test_rust_escaped_braces_are_not_placeholders(tmp_path: Path) -> None:
    rust = (
        'fn f(value: u8) -> String {\n'
        '    let a = format!("{{}} {{ x }} {{{value}}} {{{}}}", 1);\n'
        '    format!("{a}{{\\"k\\":{}}}", value)\n'
        '}\n'
    )
    template = make_template(tmp_path, {"Cargo.toml": "", "src/lib.rs": rust})
    new_workspace("x", tmp_path / "x", template=str(template))
    assert (tmp_path / "x/src/lib.rs").read_text() == rust


@pytest.mark.cargo  # `cargo fmt` is cargo: it reads the workspace's members with `cargo metadata`
@pytest.mark.parametrize("template", available_templates())
def test_generated_code_passes_cargo_fmt_and_git_ignores_pythons_caches(tmp_path: Path, template: str) -> None:
    """A new workspace is one a Rust user can run `cargo fmt --check` on, and `git status` in after pytest ran."""
    new_workspace("fmt-check", tmp_path / "ws", template=template, offline=False, lock=False)
    ignored = (tmp_path / "ws/.gitignore").read_text().splitlines()
    assert {"__pycache__/", ".pytest_cache/", "/target"} <= set(ignored)
    done = subprocess.run(["cargo", "fmt", "--all", "--check"], cwd=tmp_path / "ws", capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("template", available_templates())
def test_the_built_in_templates_pass_the_placeholder_check(tmp_path: Path, template: str) -> None:
    files = plan("tool", tmp_path / "tool", template)
    assert any(f.relative.as_posix() == "wasmforge.toml" for f in files)


@pytest.mark.parametrize("config", ["", 'description = "nothing here"\n'])
def test_an_empty_template_is_refused(tmp_path: Path, config: str) -> None:
    template = make_template(tmp_path, {}, config)
    result = run_cli("new", "x", "--template", str(template), cwd=tmp_path)
    assert_one_line_error(result, 2, "has no files", "nothing to create")
    assert "wasmforge build" not in result.stderr
    assert not (tmp_path / "x").exists()


# ---- the generated wasmforge.toml lists every setting -------------------------------------------------


def _keys_by_table(text: str) -> dict[str, set[str]]:
    """Each [table]'s keys, set or commented out (``# key = value``)."""
    tables: dict[str, set[str]] = {}
    table = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            table = header.group(1)
            tables.setdefault(table, set())
            continue
        key = re.match(r"^(?:# )?(\w+) = ", line)
        if key and table:
            tables[table].add(key.group(1))
    return tables


@pytest.mark.parametrize("template", available_templates())
def test_generated_wasmforge_toml_lists_every_setting_with_its_default(tmp_path: Path, template: str) -> None:
    root = tmp_path / "tool"
    new_workspace("tool", root, template=template)
    text = (root / "wasmforge.toml").read_text()
    tables = _keys_by_table(text)
    missing = [f"[{table}] {key}" for table, key in _SCHEMA
               if key not in tables.get(table, set()) and (table, key) not in OLD_SPELLINGS]
    assert missing == [], f"templates/{template}/wasmforge.toml lacks {missing}"
    # What it sets are the defaults: the same settings as no wasmforge.toml at all.
    settings = load_settings(root, env={})
    assert settings == Settings(root=root, plugin_crates=settings.plugin_crates)
    (root / "wasmforge.toml").unlink()
    assert load_settings(root, env={}) == settings
    # The commented-out keys are valid settings once uncommented.
    (root / "wasmforge.toml").write_text(re.sub(r"(?m)^# (\w+ = )", r"\1", text))
    load_settings(root, env={})


def test_list_templates() -> None:
    result = run_cli("new", "--list-templates")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["default", "mdbook", "minimal"]
    assert "no crates at all" in result.stdout and "chain of plugins" in result.stdout


@pytest.mark.cargo
def test_minimal_template_needs_no_crates(tmp_path: Path, shared_cargo_target) -> None:
    assert run_cli("new", "tiny", "--template", "minimal", cwd=tmp_path).returncode == 0
    root = tmp_path / "tiny"
    manifest = (root / "crates/tiny-plugin/Cargo.toml").read_text()
    assert "[dependencies]" not in manifest
    assert not (root / "crates/wasmforge-pdk").exists()
    assert run_cli("build", cwd=root).returncode == 0
    assert run_cli("call", "add", "1", "2", cwd=root).stdout == "3\n"
    assert run_cli("call", "fib", "50", cwd=root).stdout == "12586269025\n"
    assert run_cli("call", "average", "1", "2", cwd=root).stdout == "1.5\n"
    assert run_cli("call", "--list", cwd=root).stdout.splitlines() == [
        "add(p0: i32, p1: i32) -> i32", "fib(p0: i32) -> i64", "average(p0: f64, p1: f64) -> f64",
    ]


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target) -> Path:
    root = tmp_path_factory.mktemp("mdbook") / "notes"
    new_workspace("notes", root, template="mdbook")
    result = run_cli("build", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def chapter(book_json: dict, *path: int) -> dict:
    item = book_json["items"][path[0]]["Chapter"]
    for index in path[1:]:
        item = item["sub_items"][index]["Chapter"]
    return item


@pytest.mark.cargo
def test_mdbook_template_chains_a_book_through_its_plugins(book: Path) -> None:
    source = (book / "book.json").read_text()
    result = subprocess.run([sys.executable, "-m", "wasmforge", "chain", "preprocess"], input=source, cwd=book,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["items"][0] == {"PartTitle": "Getting started"}
    intro = chapter(out, 1)["content"]
    assert intro.startswith("# Introduction\n\n**Sections**\n\n- [Why wasm](#why-wasm)\n- [How](#how)\n\nPlugins in Rust 🦀")
    assert "fast 🚀." in intro
    details = chapter(out, 1, 0)["content"]
    assert details == "# Details\n\n**Sections**\n\n- [First](#first)\n\n## First\n\nHello 👋\n"
    assert out["items"][2] == "Separator"
    assert chapter(out, 1)["name"] == "Introduction"  # everything else passes through


@pytest.mark.cargo
def test_mdbook_protocol(book: Path) -> None:
    assert run_cli("chain", "preprocess", "--mdbook", "supports", "html", cwd=book).returncode == 0
    payload = json.dumps([{"root": ".", "renderer": "html"}, json.loads((book / "book.json").read_text())])
    result = subprocess.run([sys.executable, "-m", "wasmforge", "chain", "preprocess", "--mdbook"], input=payload,
                            cwd=book, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Hello 👋" in chapter(json.loads(result.stdout), 1, 0)["content"]
    bad = subprocess.run([sys.executable, "-m", "wasmforge", "chain", "preprocess", "--mdbook"], input="{}", cwd=book,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert_one_line_error(bad, 2, "--mdbook expects mdBook's [context, book] JSON array")


def test_next_steps_come_from_the_template(tmp_path: Path) -> None:
    result = run_cli("new", "notes", "--template", "mdbook", cwd=tmp_path)
    assert result.stderr.splitlines()[-2:] == ["  wasmforge build", "  wasmforge chain preprocess < book.json"]


def make_user_template(root: Path, **config: str) -> Path:
    template = root / "my-template"
    (template / "crates/{{name}}-plugin/src").mkdir(parents=True)
    (template / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/*"]\n')
    (template / "wasmforge.toml").write_text("")
    (template / "crates/{{name}}-plugin/Cargo.toml").write_text(
        '[package]\nname = "{{name}}-plugin"\nversion = "0.1.0"\nedition = "2021"\n\n[lib]\ncrate-type = ["cdylib"]\n\n'
        '[dependencies]\nwasmforge-pdk = { path = "../wasmforge-pdk" }\n'
    )
    (template / "crates/{{name}}-plugin/src/lib.rs").write_text(
        "use wasmforge_pdk::plugin_fn;\n\n/// From {{crate}}'s own template.\n#[plugin_fn]\n"
        "pub fn shout(text: &str) -> String {\n    format!(\"{}! ({{name}})\", text.to_uppercase())\n}\n"
    )
    lines = [f"{key} = {value}" for key, value in config.items()]
    (template / "template.toml").write_text("\n".join(lines) + "\n")
    return template


@pytest.mark.cargo
def test_a_users_own_template_directory(tmp_path: Path, shared_cargo_target) -> None:
    template = make_user_template(tmp_path, include='["_guest"]', description='"mine"')
    result = run_cli("new", "my-app", "--template", str(template), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "my-app"
    assert (root / "crates/my-app-plugin/src/lib.rs").read_text().count("my_app") == 1
    assert (root / "crates/wasmforge-pdk/src/lib.rs").is_file() and (root / "crates/my-app-macro").is_dir()
    assert not (root / "template.toml").exists()
    assert run_cli("build", cwd=root).returncode == 0
    assert run_cli("call", "shout", "hi", cwd=root).stdout == "HI! (my-app)\n"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"colour": '"blue"'}, "unknown key(s) colour"),
        ({"include": '["default"]'}, "includes 'default', which is not a shared part (_guest)"),
        ({"include": '"_guest"'}, "include must be a list"),
    ],
)
def test_template_config_errors(tmp_path: Path, config: dict, message: str) -> None:
    template = make_user_template(tmp_path, **config)
    assert_one_line_error(run_cli("new", "x", "--template", str(template), cwd=tmp_path), 2, message)
    assert not (tmp_path / "x").exists()


def test_a_template_writing_a_file_twice_is_refused(tmp_path: Path) -> None:
    template = make_user_template(tmp_path, include='["_guest"]')
    (template / "crates/wasmforge-pdk").mkdir()
    (template / "crates/wasmforge-pdk/Cargo.toml").write_text("")
    with pytest.raises(ScaffoldError, match="writes crates/wasmforge-pdk/Cargo.toml twice"):
        new_workspace("x", tmp_path / "x", template=str(template))


def test_a_missing_template_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("new", "x", "--template", "./nowhere/tpl", cwd=tmp_path), 2,
                          "template directory ./nowhere/tpl does not exist")


# ---- what a debug build compiles, and how: fresh reloads depend on it ----------------


def opt_levels(root: Path) -> dict[str, str]:
    """Each package's opt-level in a debug wasm build of ``root``, from cargo's own artifact messages."""
    from wasmforge.workspace.build import build_argv
    from wasmforge.workspace.cargo import Cargo
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.toolchain import find_toolchain

    settings = load_settings(root)
    toolchain = find_toolchain(settings.target)
    argv = build_argv(Cargo.for_settings(settings, toolchain), settings.target, settings.plugin_crates)
    result = subprocess.run(argv, cwd=root, env=toolchain.cargo_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    levels = {}
    for line in result.stdout.splitlines():
        message = json.loads(line)
        # Keyed by target name (cargo's package_id format differs between versions);
        # build scripts and proc macros run on the host and are not in the .wasm.
        if message.get("reason") == "compiler-artifact" and not {"proc-macro", "custom-build"} & set(message["target"]["kind"]):
            # Cargo 1.85 names a lib target demo_plugin where 1.63 said demo-plugin: keyed as the package is.
            levels[message["target"]["name"].replace("_", "-")] = message["profile"]["opt_level"]
    return levels


@pytest.mark.cargo
def test_a_debug_build_optimizes_the_guest_support_and_leaves_the_plugin_to_build_fast(demo) -> None:
    # The pdk and serde_json are compiled once, optimized ("s" keeps sharing their generic
    # code with the plugin crate); the plugin crate, what a save rebuilds, stays at 0.
    levels = opt_levels(demo.root)
    assert levels["demo-plugin"] == "0"
    for package in ("wasmforge-pdk", "serde-json", "serde", "itoa", "ryu"):
        assert levels[package] == "s", (package, levels)


@pytest.mark.cargo
def test_a_debug_plugin_carries_no_json_value_for_its_panic_hook(demo) -> None:
    # The panic report is written without serde_json::Value, which brought BTreeMap and
    # float formatting into every plugin: code wasmtime compiled again on each reload.
    from wasmforge.abi.wasmfile import custom_sections

    (names,) = custom_sections(demo.wasm.read_bytes(), "name")
    assert b"wasmforge_pdk" in names and b"__wf_init" in names  # the name section is there to look at
    for absent in (b"BTreeMap", b"serde_json5value", b"3ryu"):
        assert absent not in names, absent
