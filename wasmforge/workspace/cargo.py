"""Running cargo: THE place its command lines are built, and the environment it runs in.

Every cargo wasmforge runs (`build` for wasm, `run` of the native runner,
`test`, `generate-lockfile` for a new workspace) is made here, so they agree:
the chosen toolchain's cargo paired with its rustc (through RUSTC), the
profile, Debian's registry where builds take crates from it, and
``[build] target_dir`` unless CARGO_TARGET_DIR says otherwise. Before cargo
runs in a workspace, its Cargo.lock is made readable for that cargo
(lockfile.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import BuildError
from .lockfile import make_readable
from .settings import Settings
from .toolchain import DEFAULT_TARGET, Toolchain, find_toolchain, offline_config_args


#: The cargo commands that compile, and so take --features and --no-default-features.
COMPILING = ("build", "run", "test", "check")


class Cargo:
    """cargo, as wasmforge runs it in one workspace (``root``) with one toolchain.

    Without a ``toolchain``, the one for ``target`` is found the first time it is needed (ToolchainError if none).
    """

    def __init__(self, root: Path, toolchain: Optional[Toolchain] = None, *, target: str = DEFAULT_TARGET,
                 release: bool = False, debian_registry: bool = False, target_dir: Optional[Path] = None,
                 features: Sequence[str] = (), no_default_features: bool = False) -> None:
        self.root = root
        self.features = tuple(features)
        self.no_default_features = no_default_features
        self._toolchain = toolchain
        self.target = target
        self.release = release
        self._debian_registry = debian_registry
        self.target_dir = target_dir

    @classmethod
    def for_settings(cls, settings: Settings, toolchain: Optional[Toolchain] = None) -> "Cargo":
        """cargo for a workspace's settings: its target, profile, features, ``offline`` and ``target_dir``."""
        return cls(settings.root, toolchain, target=settings.target, release=settings.profile == "release",
                   debian_registry=settings.offline, target_dir=settings.target_dir, features=settings.features,
                   no_default_features=settings.no_default_features)

    @property
    def toolchain(self) -> Toolchain:
        if self._toolchain is None:
            self._toolchain = find_toolchain(self.target)
        return self._toolchain

    @property
    def debian_registry(self) -> bool:
        """Take crates from Debian's registry (offline): always with Debian's toolchain, or when asked to."""
        return self._debian_registry or self.toolchain.is_debian

    def argv(self, command: str, *options: str, crates: Sequence[str] = (), release: Optional[bool] = None,
             trailing: Optional[Sequence[str]] = None, features: Optional[Sequence[str]] = None) -> list[str]:
        """``cargo COMMAND OPTIONS -p CRATE... [--release] [--features F] [--no-default-features] [Debian's registry]
        [-- TRAILING...]``; the features only for the commands that compile (``features`` instead of the settings')."""
        argv = [str(self.toolchain.cargo), command, *options]
        for crate in crates:
            argv += ["-p", crate]
        if self.release if release is None else release:
            argv.append("--release")
        if command in COMPILING:
            chosen = self.features if features is None else features
            if chosen:
                argv += ["--features", ",".join(chosen)]
            if self.no_default_features:
                argv.append("--no-default-features")
        if self.debian_registry:
            argv += offline_config_args()
        if trailing is not None:
            argv += ["--", *trailing]
        return argv

    def env(self) -> dict[str, str]:
        """The environment cargo runs with: the toolchain's pair, and ``target_dir`` unless CARGO_TARGET_DIR is set."""
        env = self.toolchain.cargo_env()
        if self.target_dir is not None and not env.get("CARGO_TARGET_DIR"):
            env["CARGO_TARGET_DIR"] = str(self.target_dir)
        return env

    def prepare(self) -> None:
        """What must hold before cargo runs in the workspace: a Cargo.lock this cargo can read."""
        make_readable(self.root, self.toolchain)

    def popen(self, argv: Sequence[str], **options: Any) -> "subprocess.Popen[str]":
        """Starts ``argv`` in the workspace (stdin closed, text output); BuildError if cargo cannot start."""
        try:
            return subprocess.Popen(list(argv), cwd=self.root, env=self.env(), stdin=subprocess.DEVNULL, text=True,
                                    encoding="utf-8", errors="replace", **options)
        except OSError as error:
            raise BuildError(f"could not run {argv[0]}: {error.strerror}") from error

    def capture(self, argv: Sequence[str], timeout: float) -> "subprocess.CompletedProcess[str]":
        """Runs ``argv`` in the workspace, its output captured; OSError or TimeoutExpired as subprocess raises them."""
        return subprocess.run(list(argv), cwd=self.root, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, encoding="utf-8", errors="replace", timeout=timeout)

    def write_lock(self) -> Optional[str]:
        """Resolves the workspace into Cargo.lock offline, with this cargo (so in a format it reads).

        Returns None when it was written, else the reason it was not (the first build
        then writes it). Never raises for a failed resolve: the workspace is still usable.
        """
        argv = self.argv("generate-lockfile", "--offline", release=False)
        try:
            done = self.capture(argv, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"could not run {argv[0]}: {getattr(error, 'strerror', None) or error}"
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
            return (errors or done.stderr.strip().splitlines() or [f"cargo exited with status {done.returncode}"])[0]
        return None

    def run(self, argv: Sequence[str]) -> int:
        """Runs ``argv`` in the workspace with this process's stdout and stderr; its exit status."""
        try:
            return subprocess.run(list(argv), cwd=self.root, env=self.env()).returncode
        except OSError as error:
            raise BuildError(f"could not run {argv[0]}: {error.strerror}") from error
