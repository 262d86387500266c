"""Running commands as a user who is not root, for what only such a user meets (permission denied).

When the suite itself runs as root (CI does), commands run as ``nobody`` through
util-linux's ``setpriv``; otherwise they run as the suite's own user. The Python
they run must be one that user may execute: a venv made from an interpreter
under /root (pyenv's) is not, so the system's python3 of the same version is
used then, with this checkout and the venv's site-packages on PYTHONPATH.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from helpers import REPO

USER = "nobody"
#: What the probe runs: the CLI tests need these imports in the other user's Python, and they
#: start `sys.executable -m wasmforge` themselves (setpriv may exec a path that user's own
#: processes may not: a venv's python linking to pyenv's under /root).
_PROBE = ("import subprocess, sys, wasmtime, watchdog, pytest, hypothesis, wasmforge; "
          "subprocess.run([sys.executable, '-c', 'import wasmforge'], check=True)")


@dataclass(frozen=True)
class Unprivileged:
    """How to run a command as a user who is not root."""

    #: Prepended to each command (empty when the suite is not root already).
    prefix: tuple[str, ...]
    #: A Python that user can run, with wasmforge's dependencies importable.
    python: str
    pythonpath: tuple[str, ...]
    uid: int
    gid: int

    def env(self, home: Path, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PYTHONHOME")}
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([*self.pythonpath, *inherited]),
                   PYTHONDONTWRITEBYTECODE="1")
        env.update(extra or {})
        return env

    def run(self, command: Sequence[str], cwd: Path, home: Path, *, env: Optional[Mapping[str, str]] = None,
            timeout: float = 600) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([*self.prefix, *command], cwd=cwd, env=self.env(home, env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def wasmforge(self, *args: str, cwd: Path, home: Path) -> "subprocess.CompletedProcess[str]":
        return self.run([self.python, "-m", "wasmforge", *args], cwd=cwd, home=home)

    def own(self, path: Path) -> Path:
        """Gives ``path`` to the user (a no-op when the suite is that user)."""
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)
        return path


def _site_packages() -> list[str]:
    return [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]


@functools.lru_cache(maxsize=None)
def unprivileged() -> Union[Unprivileged, str]:
    """The way to run as a user who is not root, or why there is none."""
    if os.geteuid() != 0:
        return Unprivileged(prefix=(), python=sys.executable, pythonpath=(str(REPO),), uid=os.geteuid(),
                            gid=os.getegid())
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "setpriv (util-linux) is not installed, so the suite cannot drop root"
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        return f"there is no user {USER!r} to run as"
    prefix = (setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}", "/usr/bin/python3"]
    paths = (str(REPO), *_site_packages())
    home = tempfile.mkdtemp(prefix="wasmforge-probe-")
    tried = []
    try:
        os.chown(home, user.pw_uid, user.pw_gid)
        for python in dict.fromkeys(candidates):
            found = Unprivileged(prefix=prefix, python=python, pythonpath=paths, uid=user.pw_uid, gid=user.pw_gid)
            try:
                probe = found.run([python, "-c", _PROBE], cwd=Path(home), home=Path(home), timeout=120)
            except (OSError, subprocess.TimeoutExpired) as error:
                tried.append(f"{python}: {error}")
                continue
            if probe.returncode == 0:
                return found
            tried.append(f"{python}: {(probe.stderr.strip().splitlines() or ['exit %d' % probe.returncode])[-1]}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return f"no Python that {USER} may run can import wasmforge's dependencies ({'; '.join(tried)})"


def private_directory(runner: Unprivileged) -> Path:
    """A fresh directory outside pytest's (root-only) temporary tree, owned by the unprivileged user."""
    return runner.own(Path(tempfile.mkdtemp(prefix="wasmforge-unprivileged-")))
