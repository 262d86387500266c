"""Which changed paths matter to a plugin build: small callable filters.

:class:`Noise` says what no build reads (build output, version control,
virtual environments, editors' swap, backup and temporary files).
:class:`SourceSet` says what a build does read: everything under the crates'
directories that is not noise, plus single files named one by one (a root
Cargo.toml, a file pulled in with ``include_str!`` from elsewhere, a .wasm).
"""

from __future__ import annotations

import fnmatch
import os
import threading
from pathlib import Path
from typing import Iterable, Optional, Sequence

#: Directory names whose contents no build reads, wherever they appear below a watched directory.
NOISE_DIRS = ("target", ".git", ".hg", ".svn", ".jj", ".venv", "venv", "__pycache__", "node_modules", ".idea", ".vscode")
_ALNUM = "[A-Za-z0-9]"
#: GNU ``sed -i``'s temporary file: ``sed`` and 6 random letters or digits (mkstemp's), no extension, in the
#: edited file's directory, renamed over it when done. ``sed.rs``, ``sedative.rs`` or ``sed_rules`` do not match.
SED_TEMPORARY = "sed" + _ALNUM * 6
#: Hidden files: where editors stage an atomic save (``.lib.rs.XXXX.new``, vim's ``.lib.rs.swp``, emacs's
#: ``.#lib.rs``, gedit's ``.goutputstream-*``), and ``.DS_Store``. A build reads none of them unless cargo's
#: dep-info names it, which makes it a watched file of its own.
HIDDEN = ".*"
#: Editors' and tools' swap, backup and temporary files (vim, emacs, JetBrains, kate, gedit/GIO, sed -i,
#: ``*.tmp``), hidden files, and files cargo writes. Their atomic saves still count: a temporary renamed
#: over a source file is a change to that file (see :class:`~wasmforge.watch.Watcher`).
NOISE_FILES = (
    HIDDEN, "*.swp", "*.swo", "*.swx", "*.swpx", "*~", "#*#", "4913", "*___jb_*", "*.kate-swp",
    SED_TEMPORARY, "*.tmp", "Cargo.lock",
)


class Noise:
    """True for a path no build reads: it or a directory above it is noise by name, or it is under ``extra_dirs``."""

    def __init__(
        self,
        dirs: Sequence[str] = NOISE_DIRS,
        files: Sequence[str] = NOISE_FILES,
        extra_dirs: Iterable[Path] = (),
    ) -> None:
        self.dirs = frozenset(dirs)
        self.files = tuple(files)
        self.extra_dirs = tuple(Path(d) for d in extra_dirs)

    def __call__(self, relative: Path, absolute: Optional[Path] = None) -> bool:
        """``relative`` is the path below the watched directory; ``absolute`` is checked against ``extra_dirs``."""
        if any(part in self.dirs for part in relative.parts):
            return True
        # A name that is noise as a file is noise as a directory too: nothing under .hidden/ counts either.
        names = [part for part in relative.parts if part not in (".", "..")]
        if any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in self.files):
            return True
        return absolute is not None and any(_is_within(absolute, d) for d in self.extra_dirs)

    def __repr__(self) -> str:
        extra = f", extra_dirs={[str(d) for d in self.extra_dirs]}" if self.extra_dirs else ""
        return f"Noise(dirs={sorted(self.dirs)}, files={list(self.files)}{extra})"


class SourceSet:
    """True for a path the build reads: a listed file, or anything under a listed directory that is not noise.

    Files can be added while watching (:meth:`add_files`), from cargo's dep-info.
    """

    def __init__(self, dirs: Iterable[Path] = (), files: Iterable[Path] = (), noise: Optional[Noise] = None) -> None:
        self.dirs = tuple(sorted({_absolute(d) for d in dirs}))
        self._files = {_absolute(f) for f in files}
        self.noise = noise or Noise()
        self._lock = threading.Lock()

    @property
    def files(self) -> tuple[Path, ...]:
        with self._lock:
            return tuple(sorted(self._files))

    def add_files(self, paths: Iterable[Path]) -> list[Path]:
        """Adds files not already covered; returns those that are new."""
        added = []
        with self._lock:
            for path in map(_absolute, paths):
                if path not in self._files and not self._under_dir(path):
                    self._files.add(path)
                    added.append(path)
        return added

    def __call__(self, path: Path) -> bool:
        path = _absolute(path)
        with self._lock:
            if path in self._files:
                return True
        for directory in self.dirs:
            if _is_within(path, directory):
                return not self.noise(path.relative_to(directory), path)
        return False

    def _under_dir(self, path: Path) -> bool:
        return any(_is_within(path, d) for d in self.dirs)

    def __repr__(self) -> str:
        return f"SourceSet(dirs={[str(d) for d in self.dirs]}, files={[str(f) for f in self.files]}, noise={self.noise!r})"


def link_chain(path: Path) -> list[Path]:
    """``path`` and, where it is a symbolic link, every path it leads through to the file it names.

    A plugin served through a link (``current.wasm -> builds/v3.wasm``) changes when the file
    at the end changes, and that file may live in a directory nobody would think to watch.
    """
    chain = [_absolute(path)]
    current = chain[0]
    for _ in range(40):  # the kernel's own limit on links in a row
        try:
            target = os.readlink(current)
        except OSError:  # not a link, or gone
            break
        current = _absolute(current.parent / target)
        if current in chain:
            break
        chain.append(current)
    real = Path(os.path.realpath(path))  # the same file, should a directory on the way be a link too
    return chain if real in chain else [*chain, real]


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _is_within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents
