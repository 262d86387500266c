"""`wasmforge add`: more plugin crates in one workspace, each registered where the workspace needs it; and a
workspace grown with it (one crate renamed) builds, calls, runs natively and tests every plugin, by no name pattern."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import assert_one_line_error, run_cli
from wasmforge.errors import ScaffoldError
from wasmforge.workspace.adding import add_plugin
from wasmforge.workspace.scaffold import new_workspace
from wasmforge.workspace.settings import load_settings


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    new_workspace("shop", root, offline=False, lock=False)
    return root


def test_add_writes_the_crate_and_registers_it_with_the_runner(fresh: Path) -> None:
    result = run_cli("add", "greeter", cwd=fresh)
    assert result.returncode == 0, result.stderr
    crate = fresh / "crates/greeter"
    assert sorted(p.relative_to(crate).as_posix() for p in crate.rglob("*") if p.is_file()) == [
        "Cargo.toml", "src/lib.rs", "tests/test_greeter.py"]
    assert 'name = "greeter"' in (crate / "Cargo.toml").read_text()
    assert "The greeter plugin." in (crate / "src/lib.rs").read_text()
    runner = (fresh / "crates/shop-runner/Cargo.toml").read_text()
    assert 'shop-plugin = { path = "../shop-plugin" }\ngreeter = { path = "../greeter" }\n\n[build-dependencies]' in runner
    assert 'members = ["crates/*"]' in (fresh / "Cargo.toml").read_text()  # crates/* covers it already
    assert load_settings(fresh).plugin_crates == ("greeter", "shop-plugin")  # a cdylib crate, whatever its name
    assert "crates/shop-runner/Cargo.toml: shop-runner depends on greeter" in result.stderr


def test_add_registers_in_the_lists_that_name_crates(fresh: Path) -> None:
    cargo = fresh / "Cargo.toml"
    cargo.write_text(cargo.read_text().replace('members = ["crates/*"]', 'members = [\n    "crates/*",\n]'))
    config = fresh / "wasmforge.toml"
    config.write_text(config.read_text().replace('# crates = ["shop-plugin"]', 'crates = ["shop-plugin"]  # mine'))
    add_plugin(fresh, "tools", destination=fresh / "crates/tools")
    add_plugin(fresh, "extra", destination=fresh / "crates/extra")
    assert 'crates = ["shop-plugin", "tools", "extra"]  # mine' in config.read_text()
    assert load_settings(fresh).plugin_crates == ("shop-plugin", "tools", "extra")
    (fresh / "other").mkdir()
    shutil.move(str(fresh / "crates/wasmforge-pdk"), str(fresh / "other/wasmforge-pdk"))
    cargo.write_text(cargo.read_text().replace('"crates/*",', '"crates/*",\n    "other/wasmforge-pdk",'))
    add_plugin(fresh, "far", destination=fresh / "other/far")
    assert cargo.read_text().endswith('    "other/wasmforge-pdk",\n    "other/far",\n]\nresolver = "2"\n' +
                                      cargo.read_text().split('resolver = "2"\n', 1)[1])


def test_dry_run_changes_nothing(fresh: Path) -> None:
    before = snapshot(fresh)
    result = run_cli("add", "greeter", "--dry-run", cwd=fresh)
    assert result.returncode == 0, result.stderr
    assert "  tests/test_greeter.py" in result.stdout
    assert f"would change {fresh}/crates/shop-runner/Cargo.toml: shop-runner depends on greeter" in result.stdout
    assert snapshot(fresh) == before


@pytest.mark.parametrize("name", ["shop-plugin", "shop-runner", "wasmforge-pdk"])
def test_a_name_the_workspace_has_is_refused_and_nothing_changes(fresh: Path, name: str) -> None:
    before = snapshot(fresh)
    assert_one_line_error(run_cli("add", name, cwd=fresh), 2, f"the workspace at {fresh} has a crate {name!r} "
                          f"already (in {fresh}/crates/{name}); choose another name; nothing was written")
    assert snapshot(fresh) == before


def test_what_is_in_the_way_is_refused_and_kept(fresh: Path) -> None:
    (fresh / "crates/notes").mkdir()
    (fresh / "crates/notes/todo.txt").write_text("mine")
    before = snapshot(fresh)
    assert_one_line_error(run_cli("add", "notes", cwd=fresh), 2, f"{fresh}/crates/notes exists already; "
                          "choose another name or --path; nothing was written")
    assert_one_line_error(run_cli("add", "far", "--path", "../far", cwd=fresh), 2,
                          f"{fresh.parent}/far is outside the workspace at {fresh}")
    assert_one_line_error(run_cli("add", "deep", "--path", "lib/deep", cwd=fresh), 2,
                          "the new crate depends on wasmforge-pdk at ../wasmforge-pdk, which is not there from "
                          f"{fresh}/lib/deep")
    assert_one_line_error(run_cli("add", "Bad Name", cwd=fresh), 2, "invalid name 'Bad Name'")
    assert snapshot(fresh) == before and not (fresh / "lib").exists()


def test_add_outside_a_workspace_says_so(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("add", "greeter", cwd=tmp_path), 2, "not inside a wasmforge workspace")


def test_new_inside_a_workspace_is_refused_with_add_as_the_fix(fresh: Path) -> None:
    before = snapshot(fresh)
    for where in ([], ["--path", "crates/second-plugin"]):
        destination = fresh / ("crates/second-plugin" if where else "second")
        assert_one_line_error(run_cli("new", "second", *where, cwd=fresh), 2,
                              f"{destination} is inside the wasmforge workspace at {fresh}",
                              f"`wasmforge -C {fresh} add second`")
    assert snapshot(fresh) == before


def test_add_from_the_mdbook_template_copies_its_chain_step(tmp_path: Path) -> None:
    root = tmp_path / "book"
    new_workspace("book", root, template="mdbook", offline=False, lock=False)
    added = add_plugin(root, "emoji", template="mdbook")
    assert (root / "crates/emoji/src/lib.rs").read_text() == \
        (root / "crates/book-shortcodes-plugin/src/lib.rs").read_text()
    assert added.edits == ()  # no runner, crates/* covers it, [plugin] crates unset
    assert load_settings(root).plugin_crates == ("book-shortcodes-plugin", "book-toc-plugin", "emoji")


def test_a_bare_cdylib_plugin_is_not_given_to_the_runner(fresh: Path) -> None:
    runner = (fresh / "crates/shop-runner/Cargo.toml").read_text()
    added = add_plugin(fresh, "numbers", template="minimal")
    assert added.edits == () and (fresh / "crates/shop-runner/Cargo.toml").read_text() == runner
    assert 'crate-type = ["cdylib"]' in (fresh / "crates/numbers/Cargo.toml").read_text()


def test_a_template_with_several_plugins_and_no_choice_is_refused(fresh: Path, tmp_path: Path) -> None:
    template = tmp_path / "two"
    for crate in ("a", "b"):
        (template / f"crates/{crate}").mkdir(parents=True)
        (template / f"crates/{crate}/Cargo.toml").write_text(
            f'[package]\nname = "{crate}"\n[lib]\ncrate-type = ["cdylib"]\n')
    with pytest.raises(ScaffoldError, match=r"template '.*two' has several \(a, b\) cdylib crates; name the one "
                                            r"`wasmforge add` copies in its template.toml"):
        add_plugin(fresh, "x", template=str(template))


# ---- a workspace grown with add, one crate renamed: everything works by what cargo says, not names ----------


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    """`new grown` + `add grown-greeter`, then the first plugin renamed (package and directory) to grown-tally
    as a Rust user renames a crate (its dependents' Cargo.toml follow); built once."""
    root = tmp_path_factory.mktemp("grown") / "grown"
    new_workspace("grown", root)
    add_plugin(root, "grown-greeter")
    (root / "crates/grown-plugin").rename(root / "crates/grown-tally")
    for manifest in (root / "crates/grown-tally/Cargo.toml", root / "crates/grown-runner/Cargo.toml"):
        manifest.write_text(manifest.read_text().replace("grown-plugin", "grown-tally"))
    lib = root / "crates/grown-greeter/src/lib.rs"
    lib.write_text(lib.read_text().replace(
        "    one + two\n", '    if cfg!(feature = "loud") { (one + two + 100) * 10 } else { one + two + 100 }\n'))
    manifest = root / "crates/grown-greeter/Cargo.toml"
    manifest.write_text(manifest.read_text() + "\n[features]\nloud = []\n")
    result = run_cli("build", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.mark.cargo
def test_build_finds_every_plugin_and_p_builds_any_crate(grown: Path) -> None:
    built = run_cli("build", "-q", "--json", cwd=grown)
    assert [a["crate"] for a in __import__("json").loads(built.stdout)["artifacts"]] == ["grown-greeter", "grown-tally"]
    one = run_cli("build", "-p", "grown-greeter", cwd=grown)
    assert one.returncode == 0 and one.stdout.startswith("built grown-greeter: ") and "grown-tally" not in one.stdout


@pytest.mark.cargo
def test_call_picks_the_plugin_with_p_and_refuses_ambiguity(grown: Path) -> None:
    assert run_cli("call", "-p", "grown-greeter", "add", "1", "2", cwd=grown).stdout == "103\n"
    assert run_cli("call", "-p", "grown-tally", "add", "1", "2", cwd=grown).stdout == "3\n"
    assert_one_line_error(run_cli("call", "add", "1", "2", cwd=grown), 2, "add is exported by",
                          "choose one with -p CRATE")


@pytest.mark.cargo
def test_native_runner_knows_every_plugin(grown: Path) -> None:
    assert run_cli("call", "--native", "-p", "grown-greeter", "add", "1", "2", cwd=grown).stdout == "103\n"
    assert run_cli("call", "--native", "-p", "grown-tally", "add", "1", "2", cwd=grown).stdout == "3\n"
    assert_one_line_error(run_cli("call", "--native", "add", "1", "2", cwd=grown), 2,
                          "add is exported by grown-greeter, grown-tally; choose one with -p CRATE")
    assert_one_line_error(run_cli("call", "--native", "-p", "nosuch", "add", cwd=grown), 2,
                          f"no plugin crate 'nosuch' in the workspace at {grown}; plugins: grown-greeter, grown-tally")
    assert_one_line_error(run_cli("call", "--native", "-p", "grown-tally", "-p", "grown-greeter", "add", cwd=grown), 2,
                          "--native calls one plugin crate; got -p grown-tally -p grown-greeter")
    listed = run_cli("call", "--native", "--list", cwd=grown).stdout.splitlines()
    assert listed[0] == "grown-greeter:" and "grown-tally:" in listed and "  add(one: i32, two: i32) -> i32" in listed
    only = run_cli("call", "--native", "-p", "grown-tally", "--list", cwd=grown).stdout.splitlines()
    assert only[0] == "add(one: i32, two: i32) -> i32"


@pytest.mark.cargo
def test_each_plugins_python_tests_get_their_own_plugin(grown: Path) -> None:
    greeter_tests = grown / "crates/grown-greeter/tests/test_grown_greeter.py"
    greeter_tests.write_text(greeter_tests.read_text().replace("wasm_plugin.add(1, 2) == 3", "wasm_plugin.add(1, 2) == 103"))
    result = run_cli("test", "--python-only", cwd=grown)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["pytest: ok, 8 passed, 0 failed"]


# ---- the build flags, on the grown workspace: features reach the .wasm and the native runner, the target is kept --


@pytest.mark.cargo
def test_features_reach_the_wasm_and_the_native_runner(grown: Path) -> None:
    assert run_cli("call", "-p", "grown-greeter", "-F", "loud", "add", "1", "2", cwd=grown).stdout == "1030\n"
    assert run_cli("call", "--native", "-p", "grown-greeter", "--features", "loud", "add", "1", "2",
                   cwd=grown).stdout == "1030\n"
    config = grown / "wasmforge.toml"
    original = config.read_text()
    try:
        config.write_text(original.replace("features = []", 'features = ["grown-greeter/loud"]'))
        assert run_cli("call", "-p", "grown-greeter", "add", "1", "2", cwd=grown).stdout == "1030\n"
        # -F replaces the list (as every flag replaces its key); an empty one clears it
        assert run_cli("call", "-p", "grown-greeter", "-F", "", "add", "1", "2", cwd=grown).stdout == "103\n"
    finally:
        config.write_text(original)
    assert run_cli("call", "-p", "grown-greeter", "add", "1", "2", cwd=grown).stdout == "103\n"


@pytest.mark.cargo
def test_the_target_given_is_the_target_built_and_loaded(grown: Path) -> None:
    import json

    inspected = run_cli("inspect", "-p", "grown-tally", "--target", "wasm32-wasi", "--json", cwd=grown)
    assert inspected.returncode == 0, inspected.stderr
    assert "/wasm32-wasi" in json.loads(inspected.stdout)["file"]
    config = grown / "wasmforge.toml"
    original = config.read_text()
    try:
        config.write_text(original.replace('target = "wasm32-unknown-unknown"', 'target = "wasm32-wasi"'))
        assert run_cli("call", "-p", "grown-tally", "add", "1", "2", cwd=grown).stdout == "3\n"
        kept = run_cli("inspect", "-p", "grown-tally", "--json", cwd=grown)  # what call built and loaded
        assert "/wasm32-wasi" in json.loads(kept.stdout)["file"]
    finally:
        config.write_text(original)


@pytest.mark.cargo
def test_test_takes_p_for_the_rust_tests(grown: Path) -> None:
    result = run_cli("test", "--rust-only", "-p", "grown-tally", cwd=grown)
    assert result.stdout.splitlines() == ["cargo test: ok, 1 passed, 0 failed"], result.stderr
