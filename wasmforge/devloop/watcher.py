"""Watching what a plugin build reads, with watchdog.

:func:`plugin_sources` works out the watched set for a plugin crate: its
directory and the directories of the workspace crates it depends on by path
(macro, pdk), the workspace's Cargo.toml and .cargo/config.toml; files the
build pulled in from elsewhere in the workspace (``include_str!``) are added
from cargo's dep-info after each build (:func:`dep_info_files`).

:class:`Watcher` wraps watchdog's Observer: native events where the platform
has them, polling with ``poll=True`` or when native events cannot start (no
inotify, or its limits reached). It turns file events into :class:`Change`
records for a :class:`ChangeQueue`, the loop's source of changes.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from watchdog import events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from ._filters import Noise, SourceSet, link_chain
from .workspace.build import build
from .workspace.manifest import workspace_crates
from .workspace.settings import Settings
from .workspace.toolchain import find_toolchain

if TYPE_CHECKING:
    from .reload import Built

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One file event that matters: ``kind`` is created, modified, deleted or moved.

    A file renamed onto ``path`` (an editor's atomic save) has the name it had
    before as ``source``. ``seen`` is when the event arrived, on
    ``time.perf_counter``'s clock (None: when the loop takes it).
    """

    path: Path
    kind: str
    source: Optional[Path] = field(default=None, compare=False)
    seen: Optional[float] = field(default=None, compare=False)


class ChangeQueue:
    """Changes from the watcher's thread to the reload loop's; :meth:`close` wakes a waiting reader."""

    _CLOSED = object()

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self.closed = False

    def put(self, change: Change) -> None:
        self._queue.put(change)

    def get(self, timeout: Optional[float]) -> Optional[Change]:
        """The next change, or None after ``timeout`` seconds without one (None: wait) or once closed."""
        if self.closed:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._CLOSED:
            self.closed = True
            return None
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self._queue.put(self._CLOSED)


# ---- what to watch ----------------------------------------------------------------------


def plugin_sources(settings: Settings, crate: str) -> SourceSet:
    """The files the build of ``crate`` reads, as far as they can be known before building it."""
    members = workspace_crates(settings.root)
    root_manifest = _read_manifest(settings.root / "Cargo.toml")
    dirs: list[Path] = []
    pending = [members[crate]] if crate in members else []
    while pending:
        directory = pending.pop()
        if directory in dirs:
            continue
        dirs.append(directory)
        pending.extend(_path_dependencies(directory, settings.root, root_manifest))
    files = [settings.root / "Cargo.toml", settings.root / ".cargo" / "config.toml", settings.root / ".cargo" / "config"]
    noise = Noise(extra_dirs=[_target_dir(settings)])
    return SourceSet(dirs=dirs, files=files, noise=noise)


def _target_dir(settings: Settings) -> Path:
    configured = os.environ.get("CARGO_TARGET_DIR")
    return (settings.root / configured) if configured else settings.root / "target"


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return {}


def _path_dependencies(crate_dir: Path, root: Path, root_manifest: dict[str, Any]) -> list[Path]:
    """Directories of the crates ``crate_dir`` depends on by path, in any dependency table."""
    manifest = _read_manifest(crate_dir / "Cargo.toml")
    tables = [manifest]
    tables.extend(t for t in manifest.get("target", {}).values() if isinstance(t, dict))
    shared = root_manifest.get("workspace", {}).get("dependencies", {})
    found = []
    for table in tables:
        for kind in ("dependencies", "build-dependencies", "dev-dependencies"):
            for name, spec in table.get(kind, {}).items():
                if not isinstance(spec, dict):
                    continue
                if spec.get("workspace") is True and isinstance(shared.get(name), dict) and "path" in shared[name]:
                    found.append(Path(os.path.normpath(root / shared[name]["path"])))
                elif isinstance(spec.get("path"), str):
                    found.append(Path(os.path.normpath(crate_dir / spec["path"])))
    return found


def dep_info_files(artifact: Path, within: Path) -> list[Path]:
    """The files cargo's dep-info next to ``artifact`` lists, limited to those under ``within``."""
    try:
        text = artifact.with_suffix(".d").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    files = []
    for line in text.splitlines():
        _, separator, rest = line.partition(": ")
        if not separator:
            continue
        # Make-style: spaces inside a path are escaped with a backslash.
        for token in rest.replace("\\ ", "\0").split():
            # include_str!("../../data.txt") is listed as crates/x/src/../../data.txt: name it as watchdog will.
            path = Path(os.path.normpath(token.replace("\0", " ")))
            if path.is_absolute() and within in path.parents:
                files.append(path)
    return files


class CargoBuilder:
    """The reload loop's BUILD step for a workspace: cargo, then the files its dep-info names join the watched set."""

    def __init__(self, settings: Settings, crate: str, sources: SourceSet) -> None:
        self.settings = settings
        self.crate = crate
        self.profile = settings.profile
        self.sources = sources
        self.watcher: Optional[Watcher] = None
        # Found once, up front: a machine without a toolchain fails here (ToolchainError), not on every save.
        self.toolchain = find_toolchain(settings.target)

    def __call__(self, stop: threading.Event) -> "Built":
        from .reload import Built

        result = build(self.settings, [self.crate], toolchain=self.toolchain, stop=stop)
        artifact = result.artifacts[0]
        noise = self.sources.noise
        read = [
            f for f in dep_info_files(artifact.path, self.settings.root)
            if not noise(f.relative_to(self.settings.root), f)
        ]
        added = self.sources.add_files(read)
        if added and self.watcher is not None:
            self.watcher.watch_more(added)
        return Built(path=artifact.path, diagnostics=result.diagnostics, warnings=result.warnings)


# ---- the observer -----------------------------------------------------------------------

Sink = Callable[[Change], None]
_WATCHED_KINDS = ("created", "modified", "deleted", "moved")


class FollowLinks:
    """A sink for a file served through symbolic links: passes each change on, and after each one
    watches wherever the links lead now (``ln -sf v2.wasm current.wasm``, then edits to v2.wasm)."""

    def __init__(self, path: Path, sources: SourceSet, sink: Sink) -> None:
        self.path = path
        self.sources = sources
        self.sink = sink
        self.watcher: Optional["Watcher"] = None

    def __call__(self, change: Change) -> None:
        added = self.sources.add_files(link_chain(self.path))
        if added and self.watcher is not None:
            self.watcher.watch_more(added)
        self.sink(change)


class Watcher:
    """watchdog's Observer over a :class:`SourceSet`: each relevant file event becomes a Change for ``sink``.

    Only created/modified/deleted/moved events count: opening or reading a
    file (which cargo does to every source) never does. A move counts when
    either end is relevant, so an editor's atomic save (temp file renamed over
    the original) is a change to the original, whatever the temporary was
    called; a hidden temporary (``.lib.rs.XXXX.new``) is noise until then.
    """

    def __init__(self, sources: SourceSet, sink: Sink, *, poll: bool = False, poll_interval: float = 0.3) -> None:
        self.sources = sources
        self.sink = sink
        self.poll_interval = poll_interval
        self.mode = "polling" if poll else "native"
        self._observer: Any = None
        self._scheduled: set[tuple[Path, bool]] = set()

    def __repr__(self) -> str:
        return f"<Watcher {self.mode} over {self.sources!r}>"

    def start(self) -> None:
        """Starts watching; falls back to polling when native events are unavailable."""
        if self.mode == "native":
            try:
                observer = self._native_observer()
                if isinstance(observer, PollingObserver):  # watchdog has nothing native on this platform
                    self.mode = "polling"
                self._start(observer)
                return
            except OSError as error:
                log.warning("native file events unavailable (%s); polling every %.2f s", error, self.poll_interval)
                self._shutdown()
                self.mode = "polling"
        self._start(self._polling_observer())

    def watch_more(self, files: Iterable[Path]) -> None:
        """Also watches ``files`` (already added to the SourceSet)."""
        for directory in sorted({f.parent for f in files}):
            try:
                self._schedule(directory, recursive=False)
            except OSError as error:
                log.warning("cannot watch %s: %s", directory, error)

    @property
    def watched_dirs(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) for everything scheduled with the observer."""
        return sorted(self._scheduled)

    def stop(self) -> None:
        self._shutdown()

    # ---- internals ----

    #: What "native" means here; a test replaces it to see the fallback.
    _native_observer: Callable[[], Any] = staticmethod(Observer)

    def _polling_observer(self) -> Any:
        return PollingObserver(timeout=self.poll_interval)

    def _start(self, observer: Any) -> None:
        self._observer = observer
        self._scheduled.clear()
        for directory in self.sources.dirs:
            self._schedule_tree(directory)
        for directory in sorted({f.parent for f in self.sources.files}):
            self._schedule(directory, recursive=False)
        observer.start()

    def _schedule_tree(self, directory: Path) -> None:
        """A source directory: itself, and each of its subdirectories that is not noise, recursively.

        So a crate's target/ (thousands of directories) is never walked or
        watched: it costs no inotify watches and no polling time.
        """
        self._schedule(directory, recursive=False)
        for child in sorted(directory.iterdir()) if directory.is_dir() else ():
            self._schedule_subtree(directory, child)

    def _schedule_subtree(self, directory: Path, child: Path) -> None:
        if child.is_dir() and not self.sources.noise(Path(child.name), child):
            self._schedule(child, recursive=True)

    def _schedule(self, directory: Path, recursive: bool) -> None:
        if self._covered(directory, recursive) or not directory.is_dir():
            return
        self._observer.schedule(_Forward(self), str(directory), recursive=recursive, event_filter=_EVENT_FILTER)
        self._scheduled.add((directory, recursive))

    def _covered(self, directory: Path, recursive: bool) -> bool:
        if (directory, recursive) in self._scheduled or (directory, True) in self._scheduled:
            return True
        return any((parent, True) in self._scheduled for parent in directory.parents)

    def _shutdown(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def _deliver(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WATCHED_KINDS or (event.is_directory and event.event_type == "modified"):
            return
        source = Path(os.fsdecode(event.src_path))
        destination = Path(os.fsdecode(event.dest_path)) if event.event_type == "moved" else None
        arrived = destination or source
        if event.is_directory and event.event_type in ("created", "moved") and arrived.parent in self.sources.dirs:
            self._schedule_subtree(arrived.parent, arrived)  # a new top-level directory in a crate
        if destination is not None and self.sources(destination):
            self.sink(Change(destination, "moved", source=source, seen=time.perf_counter()))
        elif self.sources(source):
            self.sink(Change(source, event.event_type, seen=time.perf_counter()))


class _Forward(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher._deliver(event)


#: The events worth a kernel's attention: never opened/closed/attrib (cargo opens every source).
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    events.FileCreatedEvent, events.FileModifiedEvent, events.FileDeletedEvent, events.FileMovedEvent,
    events.DirCreatedEvent, events.DirDeletedEvent, events.DirMovedEvent,
]
