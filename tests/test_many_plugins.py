"""Many plugins in one workspace, end to end on real builds: a workspace grown to three plugin crates with
`add`, one renamed, one built with a feature, all watched at once while an app calls each, with saves to
each and a broken one; and `wasmforge watch` serving them all."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import assert_one_line_error, run_cli
from watching import TIMEOUT, WatchProcess, poll_until, save
from wasmforge.events import Event, KeptOldVersion
from wasmforge.workspace.adding import add_plugin
from wasmforge.workspace.scaffold import new_workspace

pytestmark = pytest.mark.cargo

SOURCE = """use wasmforge_pdk::plugin_fn;

#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {{
    let sum = one + two + {offset};
    if cfg!(feature = "loud") {{
        sum * 10
    }} else {{
        sum
    }}
}}

#[plugin_fn]
pub fn preprocess(text: String) -> String {{
    format!("{{}}[{tag}]", text)
}}
"""

#: Crate -> (add's offset, preprocess's tag) of the first version of each.
FIRST = {"fleet-tally": (0, "tally"), "fleet-greeter": (100, "greeter"), "fleet-counter": (1000, "counter")}


def source(offset: int, tag: str) -> str:
    return SOURCE.format(offset=offset, tag=tag)


def lib(root: Path, crate: str) -> Path:
    return root / "crates" / crate / "src/lib.rs"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Iterator[Path]:
    """`new fleet`, `add fleet-greeter`, `add fleet-counter`; fleet-plugin renamed (package and directory) to
    fleet-tally; fleet-greeter built with its feature `loud` ([build] features). Built once."""
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    new_workspace("fleet", root)
    add_plugin(root, "fleet-greeter")
    add_plugin(root, "fleet-counter")
    (root / "crates/fleet-plugin").rename(root / "crates/fleet-tally")
    for manifest in (root / "crates/fleet-tally/Cargo.toml", root / "crates/fleet-runner/Cargo.toml"):
        manifest.write_text(manifest.read_text().replace("fleet-plugin", "fleet-tally"))
    greeter = root / "crates/fleet-greeter/Cargo.toml"
    greeter.write_text(greeter.read_text() + "\n[features]\nloud = []\n")
    config = root / "wasmforge.toml"
    config.write_text(config.read_text().replace("features = []", 'features = ["fleet-greeter/loud"]'))
    for crate, (offset, tag) in FIRST.items():
        lib(root, crate).write_text(source(offset, tag))
    built = run_cli("build", cwd=root)
    assert built.returncode == 0, built.stderr
    yield root


@pytest.fixture
def sources(fleet: Path) -> Iterator[Path]:
    """Each plugin's first source when the test starts, and again after it."""
    for crate, (offset, tag) in FIRST.items():
        lib(fleet, crate).write_text(source(offset, tag))
    yield fleet
    for crate, (offset, tag) in FIRST.items():
        lib(fleet, crate).write_text(source(offset, tag))


def test_hot_plugins_serve_every_crate_and_reload_each_on_its_own(sources: Path) -> None:
    import wasmforge

    root = sources
    failures: dict[str, list[KeptOldVersion]] = {crate: [] for crate in FIRST}

    def recorder(crate: str) -> Any:
        def record(event: Event) -> None:
            if isinstance(event, KeptOldVersion):
                failures[crate].append(event)
        return record

    with wasmforge.HotPlugins.from_workspace(root, on_event={c: recorder(c) for c in FIRST}) as hot:
        assert sorted(hot) == sorted(FIRST)
        assert hot.shared_build is not None and hot.shared_build.builds == 1  # three plugins, one cargo build
        assert {c: hot[c].version for c in hot} == {c: 1 for c in FIRST}
        assert (hot["fleet-tally"].add(1, 2), hot["fleet-greeter"].add(1, 2), hot["fleet-counter"].add(1, 2)) == \
            (3, 1030, 1003)  # the greeter with its feature
        assert hot.chain("preprocess", "x") == "x[counter][greeter][tally]"  # crate order

        # An app calls every plugin, all the time, while they reload.
        stop = threading.Event()
        errors: list[BaseException] = []
        answers: dict[str, set[int]] = {crate: set() for crate in FIRST}

        def app() -> None:
            while not stop.is_set():
                for crate in FIRST:
                    try:
                        answers[crate].add(hot[crate].add(1, 2))
                    except BaseException as error:  # noqa: BLE001 - any failure of a call fails the test
                        errors.append(error)

        caller = threading.Thread(target=app)
        caller.start()
        try:
            save(lib(root, "fleet-tally"), source(1, "tally2"))
            poll_until(lambda: hot["fleet-tally"].version == 2, TIMEOUT)
            assert hot["fleet-tally"].add(1, 2) == 4
            assert (hot["fleet-greeter"].version, hot["fleet-counter"].version) == (1, 1)

            save(lib(root, "fleet-counter"), source(1000, "counter") + "\nfn broken(\n")
            poll_until(lambda: failures["fleet-counter"], TIMEOUT)
            assert failures["fleet-counter"][0].stage == "build" and "unclosed delimiter" in \
                failures["fleet-counter"][0].error
            assert hot["fleet-counter"].version == 1 and hot["fleet-counter"].add(1, 2) == 1003

            save(lib(root, "fleet-greeter"), source(200, "greeter2"))  # moves on while counter is broken
            poll_until(lambda: hot["fleet-greeter"].version == 2, TIMEOUT)
            assert hot["fleet-greeter"].add(1, 2) == 2030
            assert hot.chain("preprocess", "x") == "x[counter][greeter2][tally2]"

            save(lib(root, "fleet-counter"), source(2000, "counter2"))  # the fix goes live
            poll_until(lambda: hot["fleet-counter"].version == 2, TIMEOUT)
            assert hot["fleet-counter"].add(1, 2) == 2003
        finally:
            stop.set()
            caller.join()
        assert errors == []
        assert answers == {"fleet-tally": {3, 4}, "fleet-greeter": {1030, 2030}, "fleet-counter": {1003, 2003}}
        assert failures["fleet-tally"] == [] and failures["fleet-greeter"] == []
        assert {c: hot[c].version for c in hot} == {c: 2 for c in FIRST}


def test_watch_serves_every_plugin_and_names_each_in_its_events(sources: Path) -> None:
    root = sources
    process = WatchProcess(root, "--json", "--call", "fleet-greeter:add 1 2", "--call", "fleet-tally:add 1 2")
    try:
        started = process.until(lambda e: e["event"] == "cycle_finished" and e["plugin"] == "fleet-counter")
        finished = [e for e in started if e["event"] == "cycle_finished"]
        while len(finished) < 3:
            finished.append(process.until_cycle_end()[-1])
        assert sorted(e["plugin"] for e in finished) == sorted(FIRST)
        results = {(e["plugin"], e["value"]) for e in process.seen if isinstance(e, dict) and e["event"] == "call_result"}
        assert results == {("fleet-greeter", 1030), ("fleet-tally", 3)}
        save(lib(root, "fleet-greeter"), source(300, "greeter3"))
        events = process.until(lambda e: e["event"] == "call_result" and e["value"] == 3030)
        assert events[-1]["plugin"] == "fleet-greeter"
        assert {e["plugin"] for e in events if e["event"] == "reloaded"} == {"fleet-greeter"}
        assert process.interrupt() == 130
    finally:
        process.close()


def test_watch_call_must_name_its_plugin_when_several_are_served(fleet: Path) -> None:
    assert_one_line_error(run_cli("watch", "--call", "add 1 2", cwd=fleet), 2,
                          "--call 'add ...' could check any of the plugin crates served "
                          "(fleet-counter, fleet-greeter, fleet-tally); name one: --call 'fleet-counter:add ...'")
    assert_one_line_error(run_cli("watch", "--call", "nosuch:add 1 2", cwd=fleet), 2,
                          "--call names 'nosuch', which is not a plugin crate served here")


def test_hot_plugin_from_workspace_names_its_crate_when_there_are_several(fleet: Path) -> None:
    import wasmforge

    with pytest.raises(wasmforge.UsageError, match=r"has several plugin crates \(fleet-counter, fleet-greeter, "
                                                    r"fleet-tally\); name one"):
        wasmforge.HotPlugin.from_workspace(fleet)
    with wasmforge.HotPlugin.from_workspace(fleet, crate="fleet-tally") as hot:
        assert hot.add(1, 2) == 3 and hot.name == "fleet-tally"


# ---- a workspace that moved or vanished under watch ends it with one line ----------------------------------------


@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_a_workspace_gone_under_watch_ends_it_with_one_line(demo: Any, tmp_path: Path, how: str) -> None:
    import shutil

    from helpers import copy_workspace

    root = tmp_path / "gone"
    copy_workspace(demo.root, root)
    process = WatchProcess(root, "--json")
    try:
        process.until_cycle_end()
        moved = tmp_path / "elsewhere"
        if how == "moved":
            root.rename(moved)
            save(moved / "crates/demo-plugin/src/lib.rs", (moved / "crates/demo-plugin/src/lib.rs").read_text() + "\n")
        else:
            shutil.rmtree(root)
        assert process.process.wait(timeout=TIMEOUT) == 1
        process.interrupt()
        errors = [line for line in process.stderr if line.startswith("error: ")]
        assert errors == [f"error: the workspace at {root} moved or was deleted (wasmforge.toml and Cargo.toml no "
                          "longer there); stopped watching it: run watch again where it is now\n"], process.stderr
        assert "Traceback" not in "".join(process.stderr)
    finally:
        process.close()


# ---- the mdbook template's chain, hot: an app sees both of its plugins reload ------------------------------------


@pytest.fixture(scope="module")
def hotbook(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> Path:
    root = tmp_path_factory.mktemp("hotbook") / "hotbook"
    new_workspace("hotbook", root, template="mdbook")
    built = run_cli("build", cwd=root)
    assert built.returncode == 0, built.stderr
    return root


def test_a_hot_chain_of_the_mdbook_template_sees_both_plugins_reload(hotbook: Path) -> None:
    import json

    import wasmforge

    book = json.loads((hotbook / "book.json").read_text())
    shortcodes = hotbook / "crates/hotbook-shortcodes-plugin/src/lib.rs"
    toc = hotbook / "crates/hotbook-toc-plugin/src/lib.rs"
    originals = shortcodes.read_text(), toc.read_text()

    def intro(hot: Any, context: Any = None) -> str:
        return str(hot.chain("preprocess", book, context=context)["items"][1]["Chapter"]["content"])

    try:
        with wasmforge.HotPlugins.from_workspace(hotbook) as hot:
            assert list(hot) == ["hotbook-shortcodes-plugin", "hotbook-toc-plugin"]
            first = intro(hot, {"options": {}})
            assert first.startswith("# Introduction\n\n**Sections**\n\n") and "🦀" in first
            save(shortcodes, originals[0].replace('(":crab:", "🦀")', '(":crab:", "CRAB")'))
            poll_until(lambda: hot["hotbook-shortcodes-plugin"].version == 2, TIMEOUT)
            assert "CRAB" in intro(hot, {"options": {}}) and hot["hotbook-toc-plugin"].version == 1
            save(toc, originals[1].replace('unwrap_or("Sections")', 'unwrap_or("Contents")'))
            poll_until(lambda: hot["hotbook-toc-plugin"].version == 2, TIMEOUT)
            assert intro(hot, {"options": {}}).startswith("# Introduction\n\n**Contents**\n\n")
    finally:
        shortcodes.write_text(originals[0])
        toc.write_text(originals[1])
