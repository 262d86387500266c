"""A workspace as one command sees it: made once, passed down.

A :class:`Workspace` reads wasmforge.toml once (with the command's
overrides), and finds the toolchain, the Cargo members and the cargo to run
the first time something needs them, never again: `call` builds, finds the
plugin's limits and loads it from the same settings; a `watch` rebuilds on
every save without re-reading a manifest or asking rustc its version.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..errors import ConfigError, UsageError
from .build import BuildResult, DiagnosticSink, build_with, check_crates
from .cargo import Cargo
from .manifest import read_manifest, workspace_crates
from .native import run_native
from .settings import Settings, find_workspace, load_settings
from .testing import LineSink, SuiteResult, run_cargo_tests, run_pytest
from .toolchain import Toolchain


class Workspace:
    """One workspace's settings, toolchain, members and cargo, each worked out once."""

    def __init__(self, settings: Settings, *, toolchain: Optional[Toolchain] = None) -> None:
        self.settings = settings
        #: cargo for these settings; it finds the toolchain when first asked.
        self.cargo = Cargo.for_settings(settings, toolchain)
        self._members: Optional[dict[str, Path]] = None

    @classmethod
    def find(cls, start: Union[str, "os.PathLike[str]"], overrides: Optional[Mapping[str, Any]] = None) -> "Workspace":
        """The workspace holding ``start`` (wasmforge.toml here or above), with ``overrides`` over its settings."""
        return cls(load_settings(find_workspace(start), overrides))

    def __repr__(self) -> str:
        return f"<Workspace {self.root} ({self.settings.profile})>"

    @property
    def root(self) -> Path:
        return self.settings.root

    @property
    def toolchain(self) -> Toolchain:
        """The cargo + rustc pair that builds for the settings' target; ToolchainError (with the fix) if none."""
        return self.cargo.toolchain

    @property
    def members(self) -> dict[str, Path]:
        """Package name -> directory of every crate in the Cargo workspace."""
        if self._members is None:
            self._members = workspace_crates(self.root)
        return self._members

    def root_manifest(self) -> dict[str, Any]:
        """The workspace's own Cargo.toml."""
        return read_manifest(self.root / "Cargo.toml") or {}

    def check_crates(self, crates: Sequence[str] = ()) -> None:
        """ConfigError if wasmforge.toml names a plugin crate the workspace lacks; UsageError for an unknown ``crates``."""
        check_crates(self.settings, self.members, crates)

    def plugin_crate(self, crate: Optional[str] = None) -> str:
        """``crate`` if it is one of the plugin crates (default: the only one); ConfigError if not, UsageError
        when there are several and none is named."""
        crates = self.settings.plugin_crates
        if crate is None and len(crates) > 1:
            raise UsageError(f"the workspace at {self.root} has several plugin crates ({', '.join(crates)}); "
                             "name one (-p CRATE, crate=...), or serve them all (wasmforge.HotPlugins)")
        chosen = crate or crates[0]
        if chosen not in crates:
            raise ConfigError(f"{chosen!r} is not a plugin crate of {self.root}; use one of: {', '.join(crates)}")
        return chosen

    def build(self, crates: Sequence[str] = (), *, on_diagnostic: Optional[DiagnosticSink] = None,
              color: bool = False, stop: Optional[threading.Event] = None) -> BuildResult:
        """Builds the plugin crates (or ``crates``) for wasm: :func:`wasmforge.build`, with what is known reused."""
        return build_with(self.settings, self.cargo, self.members, crates, on_diagnostic=on_diagnostic, color=color,
                          stop=stop)

    def run_native(self, arguments: Sequence[str], crate: Optional[str] = None) -> int:
        """The runner crate, natively, with ``arguments``: `wasmforge call --native`."""
        return run_native(self.cargo, self.members, self.settings.plugin_crates, arguments, crate=crate)

    def run_cargo_tests(self, on_line: LineSink, crates: Sequence[str] = ()) -> SuiteResult:
        return run_cargo_tests(self.settings, self.cargo, self.members, on_line, crates)

    def run_pytest(self, on_line: LineSink, extra_args: Sequence[str] = (), *,
                   profile: Optional[str] = None) -> SuiteResult:
        return run_pytest(self.settings, on_line, extra_args, profile=profile)
