"""State that survives a hot reload (issue 15): a #[plugin_state] counter, carried by a HotPlugin from the
serving version into each new one, on real cargo builds, while an application keeps calling it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import wasmforge
from conftest import PLUGINS, BuiltWorkspace, scaffold_with_plugin
from watching import save

pytestmark = pytest.mark.cargo

SOURCE = (PLUGINS / "counter.rs").read_text()


def counter_source(version: int, field: str = "count") -> str:
    """The counter plugin answering release() = ``version``, its state's field named ``field``."""
    return (SOURCE.replace("pub fn release() -> u32 {\n    1\n}", f"pub fn release() -> u32 {{\n    {version}\n}}")
            .replace("pub struct Counter {\n    pub count: u64", f"pub struct Counter {{\n    pub {field}: u64")
            .replace("c.count", f"c.{field}"))


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory, shared_cargo_target: Path) -> BuiltWorkspace:
    built = scaffold_with_plugin(tmp_path_factory.mktemp("ws"), "counter", PLUGINS / "counter.rs")
    kept = tmp_path_factory.mktemp("counter-wasm") / built.artifact.name  # later builds rewrite the artifact
    kept.write_bytes(built.artifact.read_bytes())
    return BuiltWorkspace(root=built.root, wasm=kept, artifact=built.artifact)


@pytest.fixture
def lib_rs(counter: BuiltWorkspace) -> Iterator[Path]:
    path = counter.root / "crates" / "counter-plugin" / "src" / "lib.rs"
    path.write_text(counter_source(1))
    yield path
    path.write_text(counter_source(1))


def serve(counter: BuiltWorkspace, seen: list[Any], **options: Any) -> Any:
    return wasmforge.HotPlugin.from_workspace(counter.root, check=wasmforge.CheckCall("bump"), on_event=seen.append,
                                              **options)


def reloads(seen: list[Any]) -> list[Any]:
    return [e for e in seen if e.kind == "reloaded"]


def test_the_count_survives_reloads_while_an_app_calls(counter: BuiltWorkspace, lib_rs: Path) -> None:
    seen: list[Any] = []
    hot = serve(counter, seen)
    counts: list[int] = []
    stop = threading.Event()

    def app() -> None:
        while not stop.is_set():
            counts.append(hot.bump())

    caller = threading.Thread(target=app)
    try:
        assert hot.version == 1 and hot.release() == 1
        caller.start()
        for version in (2, 3):
            save(lib_rs, counter_source(version))
            assert hot.wait_for_version(version, timeout=120)
        assert hot.release() == 3
    finally:
        stop.set()
        caller.join(timeout=60)
        hot.close()
    # Every call counted once, in order, across both swaps: nothing written between save and swap was lost,
    # and the checks' own bump() on each later candidate left no trace. (v1's check was its first bump.)
    assert len(counts) > 2 and counts == list(range(2, len(counts) + 2))
    assert [e.state for e in reloads(seen)] == ["fresh", "kept", "kept"]


@pytest.mark.parametrize("option, outcome", [("keep", "fresh"), ("require", "refused"), ("fresh", "fresh")])
def test_a_state_that_changed_shape(counter: BuiltWorkspace, lib_rs: Path, option: str, outcome: str) -> None:
    seen: list[Any] = []
    hot = serve(counter, seen, state=option)
    try:
        assert [hot.bump() for _ in range(3)] == [2, 3, 4]  # the check's bump() was the first
        save(lib_rs, counter_source(2, field="total"))
        if outcome == "refused":
            failure = next_failure(hot, seen)
            assert failure.stage == "load"
            assert "the saved state does not fit this version's state: missing field `total`" in failure.error
            assert failure.error.endswith("; refused (state='require')")
            assert hot.version == 1 and hot.bump() == 5
            return
        assert hot.wait_for_version(2, timeout=120)
        # Started anew: the check's own bump() ran on the candidate, so the app's first call counts 2.
        assert hot.bump() == 2
        state = reloads(seen)[-1].state
        if option == "keep":
            assert state.startswith("fresh: the saved state does not fit this version's state: missing field `total`")
        else:
            assert state == "fresh"
    finally:
        hot.close()


def next_failure(hot: Any, seen: list[Any]) -> Any:
    assert hot._supervisor.wait_for_cycles(2, timeout=120)
    return next(e for e in seen if e.kind == "kept_old_version")


def test_plugin_save_and_restore_state(counter: BuiltWorkspace) -> None:
    with wasmforge.load(counter.wasm) as first, wasmforge.load(counter.wasm) as second:
        assert first.has_state and first.bump() == 1 and first.bump() == 2
        second.restore_state(first.save_state())
        assert second.bump() == 3
        with pytest.raises(wasmforge.ArgumentError, match=r"^counter_plugin.wasm: the saved state does not fit this "
                                                          r"version's state: missing field `count`"):
            second.restore_state(b'{"total": 9}')
        assert second.bump() == 4  # a state that does not fit changes nothing
        assert "__wf_state_save" not in first.exports
    with wasmforge.load(counter.wasm) as again:
        assert again.bump() == 1  # a new load starts from T::default()


def test_the_cycle_line_says_what_happened_to_the_state() -> None:
    from test_watch_output import printer, stdout

    from wasmforge.events import CycleFinished, Reloaded

    shown = printer()
    for version, state in ((2, "kept"), (3, "fresh: the saved state does not fit"), (4, None)):
        shown(Reloaded(version=version, path=None, size=10, size_change=0, seconds=0.001, state=state))
        shown(CycleFinished(outcome="reloaded", version=version, seconds=0.5))
    assert stdout(shown) == [
        "change: 10 B (+0 B), reloaded in 1.0 ms as v2, state kept; save to result 0.50 s",
        "change: 10 B (+0 B), reloaded in 1.0 ms as v3, state fresh: the saved state does not fit; save to result 0.50 s",
        "change: 10 B (+0 B), reloaded in 1.0 ms as v4; save to result 0.50 s",
    ]


def test_the_bar_docs_signatures_state_and_stubs_together(counter: BuiltWorkspace, lib_rs: Path,
                                                         tmp_path: Path) -> None:
    """A plugin with doc comments, a recorded struct and a counter, hot-swapped while an app calls it: it keeps
    its count, shows its docs and signatures, and its stubs make mypy reject a wrong call."""
    import inspect
    import os
    import subprocess
    import sys

    from helpers import run_cli

    hot = serve(counter, [])
    try:
        assert str(inspect.signature(hot.tally)) == "(label: str) -> counter_plugin.Tally"
        assert hot.tally.__doc__ == "The count so far, labelled; does not count itself."
        before = [hot.bump() for _ in range(5)][-1]
        save(lib_rs, counter_source(2))
        assert hot.wait_for_version(2, timeout=120)
        assert hot.tally("after") == {"label": "after", "count": before}
        assert hot.bump() == before + 1
    finally:
        hot.close()
    written = run_cli("stubs", str(counter.artifact), "-o", "typings", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    (tmp_path / "app.py").write_text(
        "from typing import TYPE_CHECKING, cast\n\nimport wasmforge\n\n"
        "if TYPE_CHECKING:\n    from counter_plugin import CounterPlugin\n\n"
        "plugin = cast('CounterPlugin', wasmforge.load('counter_plugin.wasm'))\n"
        "count: int = plugin.tally('x')['count']\n"
        "plugin.tally(3)\n"
    )
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "app.py"], cwd=tmp_path,
                             env={**os.environ, "MYPYPATH": str(tmp_path / "typings")}, capture_output=True,
                             text=True, timeout=600)
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == (
        'app.py:10: error: Argument 1 to "tally" of "CounterPlugin" has incompatible type "int"; expected "str"  '
        "[arg-type]")
