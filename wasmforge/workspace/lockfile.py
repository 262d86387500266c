"""Cargo.lock where two cargos meet.

On these machines rustup's newer cargo sits first on PATH (and is what an
editor's rust-analyzer runs) while Debian's older cargo builds for wasm.
Cargo 1.78 and later read lock file version 4, and since 1.83 write it unless
the workspace declares an older ``rust-version``; Debian 12's cargo 1.65 reads
at most version 3 and fails every build on a version 4 file. So:

- the templates declare the ``rust-version`` their code is written for, which
  keeps newer cargo writing version 3, and `wasmforge new` writes the lock
  with the cargo that builds (:meth:`wasmforge.workspace.cargo.Cargo.write_lock`);
- before wasmforge runs cargo, :func:`make_readable` turns a version 4 file
  that cargo cannot read into version 3. The two formats differ only in how
  git source URLs are escaped, so a file without an escaped git URL becomes
  version 3 by its version line alone, every pinned version kept. Anything
  else it leaves as it is and stops with one line saying what to do.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Optional

from ..errors import BuildError
from .toolchain import Toolchain, release_of

log = logging.getLogger(__name__)

LOCK_FILE = "Cargo.lock"
#: The first cargo (major, minor) that reads each lock file version; 1 and 2 have no version line.
READABLE_SINCE = {3: (1, 53), 4: (1, 78)}
#: The file's own `version = N` (a package's version is a quoted string, so it never matches).
_VERSION_LINE = re.compile(r"^(version = )(\d+)([ \t]*\r?)$", re.MULTILINE)
#: A git source whose URL holds a %-escape: written differently by versions 3 and 4.
_ESCAPED_GIT_SOURCE = re.compile(r'^source = "git\+[^"\n]*%', re.MULTILINE)


def lock_version(text: str) -> int:
    """The format version of a Cargo.lock's text (1 or 2 when it has no version line)."""
    header = text.split("[[", 1)[0]
    found = _VERSION_LINE.search(header)
    return int(found.group(2)) if found else 1


def newest_readable(cargo: tuple[int, int]) -> int:
    """The newest lock file version a cargo of this (major, minor) reads."""
    return max((version for version, since in READABLE_SINCE.items() if cargo >= since), default=2)


def make_readable(root: Path, toolchain: Toolchain) -> Optional[str]:
    """Lets ``toolchain``'s cargo read the workspace's Cargo.lock; returns a line saying what was changed, if anything.

    A version 4 file that this cargo cannot read, and that holds nothing version 3
    writes differently, gets version 3 in its header and nothing else changed. Any
    other file this cargo cannot read stays untouched and raises BuildError with the fix.
    """
    path = root / LOCK_FILE
    release = toolchain.cargo_release()
    if release is None:
        return None
    try:
        text = path.read_bytes().decode("utf-8")  # bytes, so line endings stay as they are
    except (OSError, UnicodeDecodeError):
        return None  # absent, or unreadable: cargo says so in its own words
    version, readable = lock_version(text), newest_readable(release)
    if version <= readable:
        return None
    cargo = f"cargo {release_of(toolchain.cargo_version())}"
    if version == 4 and readable == 3 and not _ESCAPED_GIT_SOURCE.search(text):
        _replace(path, _VERSION_LINE.sub(r"\g<1>3\g<3>", text, count=1))
        note = (f"{path} was lock file version 4, which {cargo} cannot read (a newer cargo wrote it, such as "
                "an editor's); rewrote it as version 3, every pinned version kept")
        log.warning("%s", note)
        return note
    raise BuildError(unreadable_message(path, version, cargo))


def unreadable_message(path: Path, version: int, cargo: str) -> str:
    """The one line for a lock file ``cargo`` cannot read."""
    return (f"{path} is lock file version {version}, which {cargo} cannot read (a newer cargo wrote it, such as "
            f"an editor's); fix: delete it and build again ({cargo} then pins versions anew), or build with that "
            "newer cargo and its rustc through WASMFORGE_CARGO and WASMFORGE_RUSTC")


def unreadable_in_output(diagnostics: str, root: Path, toolchain: Optional[Toolchain]) -> Optional[str]:
    """The one line for cargo's own "lock file version N was found" error, if that is what it printed."""
    found = re.search(r"lock file version `?(\d+)`? was found", diagnostics)
    if found is None:
        return None
    cargo = f"cargo {release_of(toolchain.cargo_version())}" if toolchain is not None else "this cargo"
    return unreadable_message(root / LOCK_FILE, int(found.group(1)), cargo)


def _replace(path: Path, text: str) -> None:
    """Writes ``text`` over ``path`` in one step, keeping its permissions: never a half-written lock."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
