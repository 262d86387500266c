"""Watching with real files and real watchdog: what counts as a change, and what never does."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator, Optional

import pytest

from wasmforge.devloop.filters import Noise, SourceSet
from wasmforge.workspace.settings import load_settings
from wasmforge.devloop.changes import Change, ChangeQueue
from wasmforge.devloop.sources import dep_info_files, plugin_sources
from wasmforge.devloop.watcher import Watcher
from wasmforge.workspace.workspace import Workspace

#: Long enough for any file event to arrive on a loaded CI machine; only ever waited out when a test fails.
EVENT_TIMEOUT = 10.0


class Recorder:
    """Collects a Watcher's changes; ``expect`` waits (with a timeout) for the next one."""

    def __init__(self) -> None:
        self.changes = ChangeQueue()

    def expect(self, timeout: float = EVENT_TIMEOUT) -> Change:
        change = self.changes.get(timeout)
        assert change is not None, "no change seen"
        return change

    def drain(self) -> list[Change]:
        found = []
        while (change := self.changes.get(0)) is not None:
            found.append(change)
        return found


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    root = tmp_path / "crate"
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (root / "Cargo.toml").write_text('[package]\nname = "x"\n')
    return root


def watching(crate: Path, poll: bool = False) -> Iterator[tuple[Watcher, Recorder]]:
    recorder = Recorder()
    watcher = Watcher(SourceSet(dirs=[crate]), recorder.changes.put, poll=poll, poll_interval=0.05)
    watcher.start()
    try:
        yield watcher, recorder
    finally:
        watcher.stop()


@pytest.fixture(params=[False, True], ids=["native", "polling"])
def watched(request: pytest.FixtureRequest, crate: Path) -> Iterator[tuple[Watcher, Recorder]]:
    yield from watching(crate, poll=request.param)


def test_an_edit_is_a_change(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    _, recorder = watched
    (crate / "src" / "lib.rs").write_text("pub fn g() {}\n")
    assert recorder.expect().path == crate / "src" / "lib.rs"


def test_new_and_deleted_files_are_changes(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    _, recorder = watched
    (crate / "src" / "extra.rs").write_text("")
    assert recorder.expect() == Change(crate / "src" / "extra.rs", "created")
    recorder.drain()
    (crate / "src" / "extra.rs").unlink()
    changes = [recorder.expect()]
    assert changes[-1] == Change(crate / "src" / "extra.rs", "deleted")


def test_an_atomic_save_is_a_change_to_the_file_saved(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    """Editors write a temporary file and rename it over the original (vim, VS Code, JetBrains)."""
    _, recorder = watched
    temporary = crate / "src" / "lib.rs___jb_tmp___"
    temporary.write_text("pub fn saved() {}\n")
    os.replace(temporary, crate / "src" / "lib.rs")
    changes = [recorder.expect()]
    assert changes[0].path == crate / "src" / "lib.rs"
    # Native events see a move; polling sees a new inode (deleted, then created). Either way it ends saved.
    changes += recorder.drain()
    assert {c.path for c in changes} == {crate / "src" / "lib.rs"}
    assert changes[-1].kind in ("moved", "created", "modified")


def test_a_hidden_temporary_is_no_change_until_it_is_renamed_over_a_source(
    crate: Path, watched: tuple[Watcher, Recorder]
) -> None:
    """An editor's atomic save through .lib.rs.XXXX.new: created, written, and (a while later, under load)
    renamed over lib.rs. Until the rename nothing happened to the build; then lib.rs changed."""
    _, recorder = watched
    lib_rs, staged = crate / "src" / "lib.rs", crate / "src" / ".lib.rs.Xk3q.new"
    staged.write_text("pub fn staged() {}\n")
    with staged.open("a") as handle:
        handle.write("// more\n")
    # A plain save after it: had the temporary counted, its change would come first (events arrive in order).
    (crate / "src" / "mod.rs").write_text("")
    seen = [recorder.expect()]
    while seen[-1].path != crate / "src" / "mod.rs":
        seen.append(recorder.expect())
    os.replace(staged, lib_rs)
    seen.append(recorder.expect())
    while seen[-1].path != lib_rs:
        seen.append(recorder.expect())
    assert {c.path for c in seen} == {crate / "src" / "mod.rs", lib_rs}, seen
    if seen[-1].kind == "moved":  # native events see the rename; polling may see a new lib.rs instead
        assert seen[-1].source == staged


def test_a_hidden_file_that_comes_and_goes_is_never_a_change(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    _, recorder = watched
    for name in (".lib.rs.Xk3q.new", ".hidden.rs"):
        (crate / "src" / name).write_text("x")
    os.replace(crate / "src" / ".lib.rs.Xk3q.new", crate / "src" / ".lib.rs.other")  # renamed, but not onto a source
    (crate / "src" / ".hidden.rs").unlink()
    (crate / ".cache").mkdir()
    (crate / ".cache" / "x.rs").write_text("x")
    (crate / "src" / "lib.rs").write_text("pub fn h() {}\n")
    assert recorder.expect().path == crate / "src" / "lib.rs"
    assert {c.path for c in recorder.drain()} <= {crate / "src" / "lib.rs"}


@pytest.mark.skipif(shutil.which("sed") is None, reason="no sed")
def test_sed_in_place_is_a_change_to_the_file_edited_only(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    """GNU sed -i writes src/sedXXXXXX and renames it over the file: one change, to that file."""
    _, recorder = watched
    lib_rs = crate / "src" / "lib.rs"
    subprocess.run(["sed", "-i", "s/f()/g()/", str(lib_rs)], check=True)
    assert lib_rs.read_text() == "pub fn g() {}\n"
    changes = [recorder.expect()]
    # Then a plain save, so that anything the sed run still had on its way has arrived before it.
    (crate / "src" / "mod.rs").write_text("")
    while changes[-1].path != crate / "src" / "mod.rs":
        changes.append(recorder.expect())
    assert {c.path for c in changes[:-1]} == {lib_rs}, changes


def test_build_output_vcs_and_editor_files_are_never_changes(crate: Path, watched: tuple[Watcher, Recorder]) -> None:
    _, recorder = watched
    (crate / "target" / "debug").mkdir(parents=True)
    (crate / "target" / "debug" / "x.wasm").write_bytes(b"\0asm")
    (crate / ".git").mkdir()
    (crate / ".git" / "index").write_text("x")
    for name in (".lib.rs.swp", "lib.rs~", "4913", ".#lib.rs", "#lib.rs#", "lib.rs___jb_old___", "Cargo.lock"):
        (crate / "src" / name).write_text("noise")
    # Then a real save: the first change seen must be it, and nothing of the above may come with it.
    (crate / "src" / "lib.rs").write_text("pub fn h() {}\n")
    assert recorder.expect().path == crate / "src" / "lib.rs"
    assert {c.path for c in recorder.drain()} <= {crate / "src" / "lib.rs"}


def test_target_is_not_even_watched_and_new_directories_are(crate: Path, tmp_path: Path) -> None:
    """Watching a crate's target/ (thousands of directories) costs inotify watches and polling time."""
    (crate / "target" / "debug" / "deps").mkdir(parents=True)
    for watcher, recorder in watching(crate):
        assert watcher.watched_dirs == [(crate, False), (crate / "src", True)]
        (crate / "examples").mkdir()
        assert recorder.expect() == Change(crate / "examples", "created")
        (crate / "examples" / "demo.rs").write_text("fn main() {}\n")
        assert recorder.expect().path == crate / "examples" / "demo.rs"
        assert (crate / "examples", True) in watcher.watched_dirs


def test_files_are_watched_one_by_one_and_their_neighbours_ignored(tmp_path: Path) -> None:
    watched_file, neighbour = tmp_path / "plugin.wasm", tmp_path / "other.wasm"
    watched_file.write_bytes(b"1")
    recorder = Recorder()
    watcher = Watcher(SourceSet(files=[watched_file]), recorder.changes.put)
    watcher.start()
    try:
        neighbour.write_bytes(b"2")
        watched_file.write_bytes(b"3")
        assert recorder.expect().path == watched_file
    finally:
        watcher.stop()


def test_files_added_while_watching_are_watched(crate: Path, tmp_path: Path) -> None:
    """What dep-info reveals after a build (include_str! of a file outside the crate) joins the watched set."""
    data = tmp_path / "assets" / "words.txt"
    data.parent.mkdir()
    data.write_text("one")
    sources = SourceSet(dirs=[crate])
    recorder = Recorder()
    watcher = Watcher(sources, recorder.changes.put)
    watcher.start()
    try:
        added = sources.add_files([data, crate / "src" / "lib.rs"])
        assert added == [data]  # lib.rs is already covered by the crate's directory
        watcher.watch_more(added)
        data.write_text("two")
        assert recorder.expect().path == data
    finally:
        watcher.stop()


def test_polling_takes_over_when_native_events_cannot_start(crate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoInotify:
        def schedule(self, *args: object, **kwargs: object) -> None:
            pass

        def start(self) -> None:
            raise OSError(24, "inotify instance limit reached")

        def stop(self) -> None:
            pass

        def is_alive(self) -> bool:
            return False

    monkeypatch.setattr(Watcher, "_native_observer", staticmethod(NoInotify))
    for watcher, recorder in watching(crate):
        assert watcher.mode == "polling"
        (crate / "src" / "lib.rs").write_text("pub fn polled() {}\n")
        assert recorder.expect().path == crate / "src" / "lib.rs"


def test_change_queue_wakes_a_waiting_reader_on_close() -> None:
    changes = ChangeQueue()
    got: list[Optional[Change]] = []
    reader = threading.Thread(target=lambda: got.append(changes.get(None)))
    reader.start()
    changes.close()
    reader.join(timeout=EVENT_TIMEOUT)
    assert got == [None] and changes.closed


# ---- the filters ----


def test_noise_filter() -> None:
    noise = Noise(extra_dirs=[Path("/ws/out")])
    for relative in ("target/debug/x.rs", "src/.lib.rs.swp", "src/lib.rs~", "4913", ".git/HEAD", "a/.venv/b.py",
                     "src/.#lib.rs", "src/#lib.rs#", "src/lib.rs___jb_tmp___", "src/lib.rs___jb_old___",
                     "src/.goutputstream-AB12CD", "src/lib.rs.tmp", "Cargo.lock"):
        assert noise(Path(relative)), relative
    for relative in ("src/lib.rs", "Cargo.toml", "build.rs", "src/targets.rs", "data/words.txt"):
        assert not noise(Path(relative)), relative
    assert noise(Path("x.rs"), Path("/ws/out/x.rs"))
    assert "extra_dirs=['/ws/out']" in repr(noise) and "'*.swp'" in repr(noise)


def test_sed_temporary_files_are_noise_and_files_named_like_them_are_not() -> None:
    """GNU sed -i's temporary: "sed" and exactly 6 letters or digits, no extension."""
    noise = Noise()
    for name in ("sedAb12Cd", "sed0aZ9kQ", "sedabcdef", "sed123456"):
        assert noise(Path("src") / name), name
    for name in ("sed.rs", "sedative.rs", "sedatives.rs", "sed", "sedAb12C", "sedAb12Cd3", "sed_ab12c",
                 "sedAb12Cd.rs", "Sedab12cd", "src_sedAb12Cd", "used.rs"):
        assert not noise(Path("src") / name), name


def test_a_workspace_below_a_directory_called_target_is_still_watched(tmp_path: Path) -> None:
    crate = tmp_path / "target" / "ws" / "crate"
    sources = SourceSet(dirs=[crate])
    assert sources(crate / "src" / "lib.rs")
    assert not sources(crate / "target" / "lib.rs")
    assert not sources(tmp_path / "elsewhere.rs")
    assert repr(sources).startswith("SourceSet(dirs=[")


@pytest.mark.cargo
def test_plugin_sources_follow_path_dependencies(demo) -> None:
    sources = plugin_sources(Workspace(load_settings(demo.root)), "demo-plugin")
    crates = demo.root / "crates"
    assert set(sources.dirs) == {crates / "demo-plugin", crates / "demo-macro", crates / "wasmforge-pdk"}
    assert demo.root / "Cargo.toml" in sources.files
    assert sources(crates / "demo-macro" / "src" / "lib.rs")
    assert not sources(crates / "demo-runner" / "src" / "main.rs")  # the runner is not part of the plugin
    assert not sources(demo.root / "wasmforge.toml")


@pytest.mark.cargo
def test_dep_info_lists_what_the_build_read(demo) -> None:
    from wasmforge.workspace.build import build

    # Other tests build crates called demo-plugin into the shared target dir: the dep-info is the last build's.
    (artifact,) = build(load_settings(demo.root)).artifacts
    files = dep_info_files(artifact.path, demo.root)
    assert demo.root / "crates" / "demo-plugin" / "src" / "lib.rs" in files
    assert all(demo.root in f.parents for f in files)


def test_dep_info_names_files_as_the_watcher_does(tmp_path: Path) -> None:
    """include_str!("../../../words.txt") is listed with its ..: hidden-file noise must not take it for one."""
    (tmp_path / "x.d").write_text(f"{tmp_path}/x.wasm: {tmp_path}/crates/p/src/../../../words.txt\n")
    (listed,) = dep_info_files(tmp_path / "x.wasm", tmp_path)
    assert listed == tmp_path / "words.txt"
    assert not Noise()(Path("crates/p/src/../../../words.txt"))


def test_dep_info_unescapes_spaces(tmp_path: Path) -> None:
    (tmp_path / "x.d").write_text(f"{tmp_path}/x.wasm: {tmp_path}/my\\ dir/lib.rs /elsewhere/a.rs\n")
    assert dep_info_files(tmp_path / "x.wasm", tmp_path) == [tmp_path / "my dir" / "lib.rs"]
