"""`wasmforge new --template`: the built-in templates build and work, and a
user's own template directory follows the same rules."""

from __future__ import annotations

import json
import subprocess
import sys
import os
from pathlib import Path

import pytest

from helpers import REPO, assert_one_line_error, run_cli
from wasmforge.errors import ScaffoldError
from wasmforge.workspace.scaffold import new_workspace


def test_list_templates() -> None:
    result = run_cli("new", "--list-templates")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["default", "mdbook", "minimal"]
    assert "no crates at all" in result.stdout and "chain of plugins" in result.stdout


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
    from wasmforge.workspace.build import cargo_command
    from wasmforge.workspace.settings import load_settings
    from wasmforge.workspace.toolchain import find_toolchain

    settings = load_settings(root)
    toolchain = find_toolchain(settings.target)
    argv = cargo_command(settings, toolchain, settings.plugin_crates)
    result = subprocess.run(argv, cwd=root, env=toolchain.cargo_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    levels = {}
    for line in result.stdout.splitlines():
        message = json.loads(line)
        # Keyed by target name (cargo's package_id format differs between versions);
        # build scripts and proc macros run on the host and are not in the .wasm.
        if message.get("reason") == "compiler-artifact" and not {"proc-macro", "custom-build"} & set(message["target"]["kind"]):
            levels[message["target"]["name"]] = message["profile"]["opt_level"]
    return levels


@pytest.mark.cargo
def test_a_debug_build_optimizes_the_guest_support_and_leaves_the_plugin_to_build_fast(demo) -> None:
    # The pdk and serde_json are compiled once, optimized ("s" keeps sharing their generic
    # code with the plugin crate); the plugin crate, what a save rebuilds, stays at 0.
    levels = opt_levels(demo.root)
    assert levels["demo-plugin"] == "0"
    for package in ("wasmforge-pdk", "serde_json", "serde", "itoa", "ryu"):
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
