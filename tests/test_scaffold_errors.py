"""`wasmforge new`: failures while writing, and custom templates it must refuse before writing."""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

import pytest

from helpers import assert_one_line_error, run_cli
from wasmforge.workspace import scaffold
from wasmforge.workspace.settings import _SCHEMA, OLD_SPELLINGS, Settings, load_settings
from wasmforge.errors import ScaffoldError
from wasmforge.workspace.scaffold import available_templates, new_workspace, plan


def written(root: Path) -> set[str]:
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
    assert written(tmp_path) == {"a", "a/keep.txt"}
    assert (tmp_path / "a/keep.txt").read_text() == "mine"


def test_a_failure_keeps_an_empty_destination_that_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tool").mkdir()
    failing_open(monkeypatch, 3, OSError(errno.EIO, "Input/output error"))
    with pytest.raises(ScaffoldError, match="Input/output error"):
        new_workspace("tool", tmp_path / "tool")
    assert written(tmp_path) == {"tool"}


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
